// Load generator: one forked pusher process. Each push carries a fresh timestamp in its first 8 bytes.
// config (IPC): { api: 'grpc'|'batch'|'rest'|'http', targets: [addr or base URL, ...] (round-robin),
//   client: 'grpc-js' (default) | 'h2' (grpc/batch: a lean gRPC client on node:http2, far cheaper per call than
//   grpc-js's client, so that the ingress scenario measures the server, not the load generator),
//   channels: connections per target (default 1; grpc-js channels get a local subchannel pool each),
//   topic, users: 0 | number of users (private: push k goes to uid u<k % users>, uidOffset), payload,
//   rate: pushes/s (0 = as fast as accepted), inflight, count (pushes; 0 = unbounded), duration (s; 0 = unbounded),
//   batchSize }
// reports {type:'progress', sent, acked, errors} every 250 ms and {type:'done', sent, acked, errors, t0, t1}.
import http from 'node:http';
import { makePayload, nowUs, stampPayload } from '../lib/common.mjs';

process.on('disconnect', () => process.exit(0));
const cfg = await new Promise((resolve) => process.once('message', resolve));
const { api, targets, topic, users = 0, uidOffset = 0, rate = 0, inflight: maxInflight = 64, count = 0, duration = 0, batchSize = 100 } = cfg;
const client = cfg.client ?? 'grpc-js';
const channels = Math.max(1, cfg.channels ?? 1);
const size = cfg.payload ?? 100;

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
if ((api === 'grpc' || api === 'batch') && client === 'h2') {
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
      pick(i).pushData(req(uid, stampPayload(makePayload(size))), (err) => cb(err, 1));
    };
  } else {
    send = (cb) => {
      const pushes = [];
      const { i } = nextTarget();
      for (let j = 0; j < batchSize; j++) {
        const uid = users > 0 ? `u${uidOffset + (k++ % users)}` : '';
        pushes.push(req(uid, stampPayload(makePayload(size))));
      }
      pick(i).pushDataBatch({ pushes }, (err) => cb(err, batchSize));
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
  const headers = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
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

const t0 = nowUs();
const per = api === 'batch' ? batchSize : 1;
let finished = false;
const timeUp = () => duration > 0 && nowUs() - t0 >= duration * 1e6;
const countUp = () => count > 0 && sent >= count;

function finish() {
  if (finished) return;
  finished = true;
  process.send({ type: 'done', sent, acked, errors, calls, lastError, t0, t1: nowUs() });
}

function onAck(err, pushes) {
  inflight--;
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
    send(onAck);
  }
  if (inflight === 0 && (countUp() || timeUp())) finish();
}

setInterval(() => process.send({ type: 'progress', sent, acked, errors }), 250);
if (rate > 0) setInterval(pump, 1);
pump();
