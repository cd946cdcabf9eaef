// Load generator: one forked process holding up to ~4000 WebSocket clients of one system, subscribing them,
// counting deliveries cheaply and recording end-to-end latency (receive time − payload timestamp) in an HDR
// histogram (µs). Controlled over IPC by bench/run.mjs.
//
// config (first IPC message): { system, urls: [..], n, offset, mode: 'public'|'private'|'idle', topic,
//                               jwtSecret, concurrency }
// commands: {cmd:'expect', count} -> sends {type:'reached', t} once `count` more deliveries arrived
//           {cmd:'stop'}          -> opens no further connections (those being opened finish)
//           {cmd:'reset'}         -> clears the histogram
//           {cmd:'hist'}          -> {type:'hist', hist, got}
import { randomBytes } from 'node:crypto';
import net from 'node:net';
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
  // A CryptoKey imported once: given raw bytes, jose imports one per signature (~200 µs each).
  jwtKey = await crypto.subtle.importKey('raw', new TextEncoder().encode(cfg.jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
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

// ---- lean WebSocket client (impl: 'raw') ----------------------------------------------------------------------------
// The same protocol exchange as the ws-based clients, on a bare TCP socket: a hand-written upgrade request and a
// minimal frame parser (no ws Receiver, no per-message events). It costs a few µs less per delivery, which shows how
// much of the measured latency is the load generator's own CPU (pushwire and the raw ws baseline only).
const ZERO_MASK = Buffer.alloc(4);
function rawSend(sock, text) {
  const p = Buffer.from(text);
  // Client frames must be masked; an all-zero mask key is valid and leaves the payload as is.
  const head = p.length < 126 ? Buffer.from([0x81, 0x80 | p.length]) : Buffer.from([0x81, 0x80 | 126, p.length >> 8, p.length & 0xff]);
  sock.write(Buffer.concat([head, ZERO_MASK, p]));
}

function rawOpen(url, onOpen, onText, onFail) {
  const u = new URL(url);
  const sock = net.connect(Number(u.port), u.hostname);
  sock.setNoDelay(true);
  const key = randomBytes(16).toString('base64');
  sock.on('connect', () =>
    sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
  );
  let buf = null;
  let upgraded = false;
  sock.on('data', (d) => {
    buf = buf === null ? d : Buffer.concat([buf, d]);
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!buf.toString('latin1', 0, 13).startsWith('HTTP/1.1 101')) {
        onFail();
        sock.destroy();
        return;
      }
      upgraded = true;
      buf = buf.subarray(end + 4);
      onOpen(sock);
    }
    let o = 0;
    while (buf.length - o >= 2) {
      let len = buf[o + 1] & 0x7f;
      let h = 2;
      if (len === 126) {
        if (buf.length - o < 4) break;
        len = buf.readUInt16BE(o + 2);
        h = 4;
      } else if (len === 127) {
        if (buf.length - o < 10) break;
        len = Number(buf.readBigUInt64BE(o + 2));
        h = 10;
      }
      if (buf.length - o < h + len) break;
      const opcode = buf[o] & 0x0f;
      const payload = buf.subarray(o + h, o + h + len);
      o += h + len;
      if (opcode === 1 || opcode === 2) onText(payload);
      else if (opcode === 8) sock.end();
      else if (opcode === 9) sock.write(Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length]), ZERO_MASK, payload]));
    }
    buf = o === buf.length ? null : buf.subarray(o);
  });
  sock.on('error', onFail);
  sock.on('close', () => closed++);
}

function openPushwireRaw(i, done) {
  const topic = topicOf(i);
  let sock;
  rawOpen(
    urls[(offset + i) % urls.length],
    (s) => (sock = s),
    (d) => {
      if (d[0] === 0x7b /* { */) {
        const s = d.toString();
        if (s.includes('"code":20000')) {
          opened++;
          rawSend(sock, JSON.stringify({ code: 1, topic, id: 1 }));
        } else if (s.includes('"code":20001')) {
          done();
          onSubscribed();
        } else {
          errors++;
          process.stderr.write(`[clients] unexpected reply: ${s}\n`);
        }
        return;
      }
      onDelivery(readStampBytes(d));
    },
    () => {
      errors++;
      done();
    },
  );
}

function openWsRaw(i, done) {
  let sock;
  rawOpen(
    urls[(offset + i) % urls.length],
    (s) => {
      sock = s;
      opened++;
      rawSend(sock, topicOf(i));
    },
    (d) => {
      if (d.length === 2 && d[0] === 0x6f && d[1] === 0x6b /* ok */) {
        done();
        onSubscribed();
        return;
      }
      onDelivery(readStampBytes(d));
    },
    () => {
      errors++;
      done();
    },
  );
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

// impl 'raw': the lean client for public subscriptions (pushwire and ws); everything else uses the ws package.
const raw = cfg.impl === 'raw' && mode === 'public';
const open = system === 'pushwire' ? (raw ? openPushwireRaw : openPushwire) : system === 'ws' ? (raw ? openWsRaw : openWs) : openSocketio;

// open with bounded concurrency, so the listen backlogs do not overflow
let next = 0;
let inflight = 0;
let limit = n; // {cmd:'stop'} lowers it: no new connections after that
function pump() {
  while (inflight < concurrency && next < limit) {
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
  } else if (m.cmd === 'stop') limit = next;
  else if (m.cmd === 'reset') hist = newHist();
  else if (m.cmd === 'hist') process.send({ type: 'hist', hist: encodeHist(hist), got, closed, errors });
});
