// Load generator: one forked pusher process. Each push carries a fresh timestamp in its first 8 bytes.
// config (IPC): { api: 'grpc'|'batch'|'rest'|'http', targets: [addr or base URL, ...] (round-robin),
//   client: 'grpc-js' (default) | 'h2' (grpc/batch: a lean gRPC client on node:http2, far cheaper per call than
//   grpc-js's client) | 'raw' (grpc: HTTP/2 frames written by hand on a TCP socket, a few µs per call, so that
//   the ingress scenario can load a node to a full core on 2 shared cores; it counts a call as done when its
//   trailers arrive and does not decode them: the harness checks the server's ok counter instead),
//   channels: connections per target (default 1; grpc-js channels get a local subchannel pool each),
//   topic, users: 0 | number of users (private: push k goes to uid u<k % users>, uidOffset), payload,
//   rate: pushes/s (0 = as fast as accepted), inflight, count (pushes; 0 = unbounded), duration (s; 0 = unbounded),
//   batchSize, deadline: '' | a grpc-timeout value such as '30S' (grpc/batch: every call carries that deadline;
//   grpc-js: deadline = now + its duration) }
// reports {type:'progress', sent, acked, errors} every 250 ms and {type:'done', sent, acked, errors, t0, t1}.
import http from 'node:http';
import { createRequire } from 'node:module';

const require_ = createRequire(import.meta.url);
import { makePayload, nowUs, stampPayload } from '../lib/common.mjs';

process.on('disconnect', () => process.exit(0));
const cfg = await new Promise((resolve) => process.once('message', resolve));
const { api, targets, topic, users = 0, uidOffset = 0, rate = 0, inflight: maxInflight = 64, count = 0, duration = 0, batchSize = 100 } = cfg;
const client = cfg.client ?? 'grpc-js';
const channels = Math.max(1, cfg.channels ?? 1);
const size = cfg.payload ?? 100;
const deadline = cfg.deadline ?? '';
const DEADLINE_UNIT_MS = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const deadlineMs = deadline ? Number(deadline.slice(0, -1)) * DEADLINE_UNIT_MS[deadline.slice(-1)] : 0;

let sent = 0; // pushes (a batch counts batchSize)
let acked = 0;
let errors = 0;
let calls = 0;
let lastError = '';
let inflight = 0;
let k = 0;

const nextTarget = () => {
  const i = k % targets.length;
  const uid = users > 0 ? `u${uidOffset + (k % users)}` : '';
  k++;
  return { i, uid };
};

let send; // (cb(err, pushes)) => void
if (api === 'grpc' && client === 'raw') {
  send = rawH2Sender();
} else if ((api === 'grpc' || api === 'batch') && client === 'h2') {
  send = await h2Sender();
} else if (api === 'grpc' || api === 'batch') {
  const { credentials } = await import('@grpc/grpc-js');
  const { PushServiceClient, PushDataRequest } = await import(new URL('../../dist/gen/pushwire/v1/push.js', import.meta.url));
  // fromPartial fills every field the generated encoder expects (it writes any field that is not its default).
  const req = (uid, data) => PushDataRequest.fromPartial({ uid, topic, data });
  // A local subchannel pool per client: otherwise grpc-js shares one connection between clients of one target.
  const clients = targets.flatMap((t) =>
    Array.from({ length: channels }, (_, c) => new PushServiceClient(t, credentials.createInsecure(), channels > 1 ? { 'grpc.use_local_subchannel_pool': 1, 'pushwire.bench_channel': c } : {})),
  );
  const pick = (i) => clients[i * channels + (calls % channels)];
  if (api === 'grpc') {
    send = (cb) => {
      const { i, uid } = nextTarget();
      const options = deadline ? { deadline: Date.now() + deadlineMs } : {};
      pick(i).pushData(req(uid, stampPayload(makePayload(size))), options, (err) => cb(err, 1));
    };
  } else {
    send = (cb) => {
      const pushes = [];
      const { i } = nextTarget();
      for (let j = 0; j < batchSize; j++) {
        const uid = users > 0 ? `u${uidOffset + (k++ % users)}` : '';
        pushes.push(req(uid, stampPayload(makePayload(size))));
      }
      const options = deadline ? { deadline: Date.now() + deadlineMs } : {};
      pick(i).pushDataBatch({ pushes }, options, (err) => cb(err, batchSize));
    };
  }
} else {
  // 'rest' -> pushwire's POST /v1/pushData; 'http' -> the baselines' POST /push. Same JSON shape.
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInflight });
  const urls = targets.map((t) => new URL(api === 'rest' ? `${t}/v1/pushData` : `${t}/push`));
  send = (cb) => {
    const { i, uid } = nextTarget();
    const body = JSON.stringify(uid ? { uid, topic, data: stampPayload(makePayload(size)).toString('base64') } : { topic, data: stampPayload(makePayload(size)).toString('base64') });
    const u = urls[i];
    const req = http.request(
      { agent, hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => cb(res.statusCode === 200 ? null : new Error(`HTTP ${res.statusCode}`), 1));
      },
    );
    req.on('error', (e) => cb(e, 1));
    req.end(body);
  };
}

/**
 * gRPC over node:http2 with nothing else: one stream per call, a length-prefixed protobuf body, the status read from
 * the trailers (or from the headers of a trailers-only answer).
 */
async function h2Sender() {
  const http2 = await import('node:http2');
  const { PushDataRequest, PushDataBatchRequest } = await import(new URL('../../dist/gen/pushwire/v1/push.js', import.meta.url));
  const sessions = targets.flatMap((t) => Array.from({ length: channels }, () => http2.connect(`http://${t}`)));
  for (const s of sessions) s.on('error', (e) => (lastError = String(e.message)));
  const path = api === 'grpc' ? '/pushwire.v1.PushService/PushData' : '/pushwire.v1.PushService/PushDataBatch';
  const headers = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...(deadline ? { 'grpc-timeout': deadline } : {}) };
  const body = (uid) => PushDataRequest.fromPartial({ uid, topic, data: stampPayload(makePayload(size)) });
  const frame = (msg) => {
    const out = Buffer.allocUnsafe(5 + msg.length);
    out[0] = 0;
    out.writeUInt32BE(msg.length, 1);
    out.set(msg, 5);
    return out;
  };
  return (cb) => {
    const { i, uid } = nextTarget();
    let bytes;
    if (api === 'grpc') bytes = PushDataRequest.encode(body(uid)).finish();
    else {
      const pushes = [];
      for (let j = 0; j < batchSize; j++) pushes.push(body(users > 0 ? `u${uidOffset + (k++ % users)}` : ''));
      bytes = PushDataBatchRequest.encode({ pushes }).finish();
    }
    const n = api === 'grpc' ? 1 : batchSize;
    const stream = sessions[i * channels + (calls % channels)].request(headers);
    let status;
    let message = '';
    const note = (h) => {
      if (h['grpc-status'] !== undefined) {
        status = Number(h['grpc-status']);
        message = h['grpc-message'] ?? '';
      }
    };
    stream.on('response', note);
    stream.on('trailers', note);
    stream.on('data', () => {});
    stream.on('error', () => {});
    stream.on('close', () => cb(status === 0 ? null : new Error(`grpc status ${status ?? 'none'} ${decodeURIComponent(message)} (rst ${stream.rstCode})`), n));
    stream.end(frame(bytes));
  };
}

/**
 * PushData over HTTP/2 frames written by hand: the connection preface, SETTINGS (acked), a connection window opened
 * wide, then per call one HEADERS frame (a fixed HPACK block: static-table and literal fields, no dynamic table) and
 * one DATA frame with END_STREAM; a call ends at the HEADERS frame with END_STREAM from the server (its trailers),
 * or at RST_STREAM (an error). The server's flow-control window is honoured.
 */
function rawH2Sender() {
  const net = require_('node:net');
  const frame = (type, flags, stream, payload) => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  };
  const str = (s) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]); // lengths < 127, no Huffman
  const headerBlock = (authority) =>
    Buffer.concat([
      Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table)
      Buffer.from([0x04]), str('/pushwire.v1.PushService/PushData'), // :path, literal without indexing
      Buffer.from([0x01]), str(authority), // :authority
      Buffer.from([0x0f, 0x10]), str('application/grpc'), // content-type (static name 31)
      Buffer.from([0x00]), str('te'), str('trailers'),
      deadline ? Buffer.concat([Buffer.from([0x00]), str('grpc-timeout'), str(deadline)]) : Buffer.alloc(0),
    ]);
  const conns = targets.flatMap((t) => Array.from({ length: channels }, () => open(t)));
  function open(target) {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const sock = net.connect(port, host);
    sock.setNoDelay(true);
    const c = { sock, next: 1, window: 65535, waiting: [], calls: new Map(), block: headerBlock(target), corked: false };
    sock.write(Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      frame(4, 0, 0, Buffer.from([0, 4, 0x40, 0, 0, 0])), // SETTINGS_INITIAL_WINDOW_SIZE = 2^30
      frame(8, 0, 0, Buffer.from([0x7f, 0xff, 0x00, 0x00])), // connection window + ~2^31
    ]));
    let buf = null;
    sock.on('data', (d) => {
      buf = buf === null ? d : Buffer.concat([buf, d]);
      let o = 0;
      while (buf.length - o >= 9) {
        const len = buf.readUIntBE(o, 3);
        if (buf.length - o < 9 + len) break;
        const type = buf[o + 3];
        const flags = buf[o + 4];
        const id = buf.readUInt32BE(o + 5) & 0x7fffffff;
        const p = buf.subarray(o + 9, o + 9 + len);
        o += 9 + len;
        if (type === 4 && !(flags & 1)) sock.write(frame(4, 1, 0, Buffer.alloc(0)));
        else if (type === 6 && !(flags & 1)) sock.write(frame(6, 1, 0, p));
        else if (type === 8 && id === 0) {
          c.window += p.readUInt32BE(0) & 0x7fffffff;
          flush(c);
        } else if ((type === 1 && flags & 1) || type === 3) {
          const cb = c.calls.get(id);
          if (cb) {
            c.calls.delete(id);
            cb(type === 3 ? new Error(`RST_STREAM ${p.readUInt32BE(0)}`) : null, 1);
          }
        } else if (type === 7) lastError = `GOAWAY ${p.readUInt32BE(4)}`;
      }
      buf = o === buf.length ? null : buf.subarray(o);
    });
    sock.on('error', (e) => (lastError = String(e.message)));
    return c;
  }
  function flush(c) {
    while (c.waiting.length > 0 && c.window >= c.waiting[0].data) {
      const w = c.waiting.shift();
      c.window -= w.data;
      if (!c.corked) {
        c.corked = true;
        c.sock.cork();
        process.nextTick(() => {
          c.corked = false;
          c.sock.uncork();
        });
      }
      c.sock.write(w.bytes);
    }
  }
  const msg = (payload) => {
    // PushDataRequest { topic = 2, data = 3 } in a gRPC length-prefixed message
    const t = Buffer.from(topic);
    const body = Buffer.concat([Buffer.from([0x12, t.length]), t, Buffer.from([0x1a, payload.length]), payload]);
    const out = Buffer.alloc(5 + body.length);
    out.writeUInt32BE(body.length, 1);
    body.copy(out, 5);
    return out;
  };
  return (cb) => {
    const { i } = nextTarget();
    const c = conns[i * channels + (calls % channels)];
    const id = c.next;
    c.next += 2;
    const data = msg(stampPayload(makePayload(size)));
    c.calls.set(id, cb);
    c.waiting.push({ data: data.length, bytes: Buffer.concat([frame(1, 0x4, id, c.block), frame(0, 0x1, id, data)]) });
    flush(c);
  };
}

const t0 = nowUs();
const per = api === 'batch' ? batchSize : 1;
let finished = false;
const timeUp = () => duration > 0 && nowUs() - t0 >= duration * 1e6;
const countUp = () => count > 0 && sent >= count;

/** Answer times of calls (µs), the first ACK_SAMPLES of them: how long the ingress took to answer. */
const ACK_SAMPLES = 200_000;
const ackUs = [];
const pct = (sorted, q) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);

function finish() {
  if (finished) return;
  finished = true;
  const sorted = ackUs.sort((a, b) => a - b);
  const ackMs = { p50: pct(sorted, 0.5) / 1000, p99: pct(sorted, 0.99) / 1000, max: (sorted.at(-1) ?? 0) / 1000, n: sorted.length };
  process.send({ type: 'done', sent, acked, errors, calls, lastError, t0, t1: nowUs(), ackMs });
}

function onAck(err, pushes, startedUs) {
  inflight--;
  if (ackUs.length < ACK_SAMPLES) ackUs.push(nowUs() - startedUs);
  if (err) {
    errors += pushes;
    lastError = String(err.message ?? err);
  } else acked += pushes;
  if (inflight === 0 && (countUp() || timeUp())) finish();
  else if (rate === 0) pump();
}

function pump() {
  if (finished) return;
  while (inflight < maxInflight && !countUp() && !timeUp()) {
    if (rate > 0 && sent + per > ((nowUs() - t0) / 1e6) * rate + per) break; // not due yet
    inflight++;
    sent += per;
    calls++;
    const startedUs = nowUs();
    send((err, pushes) => onAck(err, pushes, startedUs));
  }
  if (inflight === 0 && (countUp() || timeUp())) finish();
}

setInterval(() => process.send({ type: 'progress', sent, acked, errors }), 250);
if (rate > 0) setInterval(pump, 1);
pump();
