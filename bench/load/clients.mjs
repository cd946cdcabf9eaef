// Load generator: one forked process holding up to ~4000 WebSocket clients of one system, subscribing them,
// counting deliveries cheaply and recording end-to-end latency (receive time − payload timestamp) in an HDR
// histogram (µs). Controlled over IPC by bench/run.mjs.
//
// config (first IPC message): { system, urls: [..], n, offset, mode: 'public'|'private'|'idle', topic,
//                               jwtSecret, concurrency }
// commands: {cmd:'expect', count} -> sends {type:'reached', t} once `count` more deliveries arrived
//           {cmd:'reset'}         -> clears the histogram
//           {cmd:'hist'}          -> {type:'hist', hist, got}
import { WebSocket } from 'ws';
import { encodeHist, newHist, nowUs, readStampBytes, readStampString } from '../lib/common.mjs';

process.on('disconnect', () => process.exit(0));

const cfg = await new Promise((resolve) => process.once('message', resolve));
const { system, urls, n, offset, mode } = cfg;
const concurrency = cfg.concurrency ?? 100;

let got = 0; // deliveries
let subscribed = 0;
let opened = 0;
let closed = 0;
let errors = 0;
let expectAt = Infinity;
let hist = newHist();

function onDelivery(ts) {
  got++;
  const lat = nowUs() - ts;
  if (lat >= 0) hist.recordValue(Math.max(1, Math.round(lat)));
  if (got >= expectAt) {
    expectAt = Infinity;
    process.send({ type: 'reached', t: nowUs(), got });
  }
}

let jwtKey;
let SignJWT;
if (mode === 'private' && system === 'pushwire') {
  ({ SignJWT } = await import('jose'));
  jwtKey = new TextEncoder().encode(cfg.jwtSecret);
}

const topicOf = (i) => {
  const g = offset + i;
  if (mode === 'idle') return `${cfg.topic}-${g}`;
  if (mode === 'private') return system === 'pushwire' ? cfg.topic : `u${g}/${cfg.topic}`;
  return cfg.topic;
};

function onSubscribed() {
  if (++subscribed === n) process.send({ type: 'ready', subscribed, opened });
}

// ---- pushwire (gpush protocol) ---------------------------------------------------------------------------------
async function openPushwire(i, done) {
  // sign before connecting: the 'message' listener must be attached in the same turn as the socket is created
  const token = mode === 'private' ? await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`u${offset + i}`).sign(jwtKey) : undefined;
  const ws = new WebSocket(urls[(offset + i) % urls.length], { perMessageDeflate: false });
  const topic = topicOf(i);
  ws.on('message', (d) => {
    if (d[0] === 0x7b /* { */) {
      // a reply; deliveries never start with '{'
      const s = d.toString();
      if (s.includes('"code":20000')) {
        opened++;
        if (token) ws.send(JSON.stringify({ code: 3, data: token, id: 1 }));
        else ws.send(JSON.stringify({ code: 1, topic, id: 1 }));
      } else if (s.includes('"code":20003')) ws.send(JSON.stringify({ code: 5, topic, id: 2 }));
      else if (s.includes('"code":20001')) {
        done();
        onSubscribed();
      } else {
        errors++;
        process.stderr.write(`[clients] unexpected reply: ${s}\n`);
      }
      return;
    }
    onDelivery(readStampBytes(d));
  });
  ws.on('error', () => {
    errors++;
    done();
  });
  ws.on('close', () => closed++);
}

// ---- raw ws baseline -------------------------------------------------------------------------------------------
function openWs(i, done) {
  const ws = new WebSocket(urls[(offset + i) % urls.length], { perMessageDeflate: false });
  ws.on('open', () => {
    opened++;
    ws.send(topicOf(i));
  });
  ws.on('message', (d) => {
    if (d.length === 2 && d[0] === 0x6f && d[1] === 0x6b /* ok */) {
      done();
      onSubscribed();
      return;
    }
    onDelivery(readStampBytes(d));
  });
  ws.on('error', () => {
    errors++;
    done();
  });
  ws.on('close', () => closed++);
}

// ---- Socket.IO baseline ----------------------------------------------------------------------------------------
let ioClient;
async function openSocketio(i, done) {
  ioClient ??= (await import('socket.io-client')).io;
  const s = ioClient(urls[(offset + i) % urls.length], { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 60_000 });
  s.on('connect', () => {
    opened++;
    s.emit('subscribe', topicOf(i), () => {
      done();
      onSubscribed();
    });
  });
  s.on('m', (payload) => onDelivery(readStampString(payload)));
  s.on('connect_error', () => {
    errors++;
    done();
  });
  s.on('disconnect', () => closed++);
}

const open = system === 'pushwire' ? openPushwire : system === 'ws' ? openWs : openSocketio;

// open with bounded concurrency, so the listen backlogs do not overflow
let next = 0;
let inflight = 0;
function pump() {
  while (inflight < concurrency && next < n) {
    inflight++;
    const i = next++;
    let finished = false;
    open(i, () => {
      if (finished) return;
      finished = true;
      inflight--;
      pump();
    });
  }
}
pump();

let last = '';
setInterval(() => {
  const s = `${got},${subscribed},${closed},${errors}`;
  if (s === last) return;
  last = s;
  process.send({ type: 'stat', got, subscribed, opened, closed, errors });
}, 200);

process.on('message', (m) => {
  if (m.cmd === 'expect') {
    expectAt = got + m.count;
    if (m.count <= 0) {
      expectAt = Infinity;
      process.send({ type: 'reached', t: nowUs(), got });
    }
  } else if (m.cmd === 'reset') hist = newHist();
  else if (m.cmd === 'hist') process.send({ type: 'hist', hist: encodeHist(hist), got, closed, errors });
});
