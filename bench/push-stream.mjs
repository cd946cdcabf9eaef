// PushStream throughput into one node through the CLI:
//   node bench/push-stream.mjs [--pushes N] [--streams S] [--payload B] [--redis URL] [--workers W] [--api stream|raw|unary]
// Sends N pushes of B bytes (topic with no subscriber) spread over S streams, waits for every
// answer, and reports pushes/s and the node's CPU per push (user+sys of the node processes from
// /proc), with the load average: on a shared machine CPU per push is the figure to compare.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { credentials } from '@grpc/grpc-js';
import { PushDataRequest, PushServiceClient } from '../dist/gen/pushwire/v1/push.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
};
const pushes = Number(arg('pushes', 200000));
const streams = Number(arg('streams', 1));
const payload = Number(arg('payload', 100));
const workers = arg('workers', '1');
const api = arg('api', 'stream');
const redis = arg('redis', undefined);
const cli = arg('cli', new URL('../dist/src/cli.js', import.meta.url).pathname);
const TICK = 1e6 / 100; // µs per clock tick

const node = spawn(
  process.execPath,
  [...(arg('prof') ? ['--cpu-prof', `--cpu-prof-dir=${arg('prof')}`] : []), cli, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', '--workers', workers, ...(redis ? ['--redis', redis] : [])],
  // --prof DIR: the node writes a V8 CPU profile there when it exits.
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const ready = workers === '1' ? 'pushwire node listening' : 'pushwire workers listening';
const grpcPort = await new Promise((resolve) => {
  createInterface({ input: node.stdout }).on('line', (line) => {
    try {
      const l = JSON.parse(line);
      if (l.msg === ready) resolve(l.grpcPort);
    } catch {}
  });
});
const children = () => {
  try {
    return execFileSync('pgrep', ['-P', String(node.pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
};
const pids = () => [node.pid, ...children()];
const cpu = () => pids().reduce((sum, pid) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return sum + Number(f[11]) + Number(f[12]);
  } catch {
    return sum;
  }
}, 0);

const data = Buffer.alloc(payload, 'x');
const req = PushDataRequest.fromPartial({ topic: 'bench', data });
const clients = Array.from({ length: streams }, () => new PushServiceClient(`127.0.0.1:${grpcPort}`, credentials.createInsecure()));

function oneStream(client, n) {
  return new Promise((resolve, reject) => {
    const call = client.pushStream();
    let answers = 0;
    let errors = 0;
    call.on('data', (a) => {
      answers++;
      if (a.error) errors++;
    });
    call.on('error', reject);
    call.on('end', () => resolve({ answers, errors }));
    let sent = 0;
    const write = () => {
      while (sent < n) {
        sent++;
        if (!call.write(req)) return call.once('drain', write);
      }
      call.end();
    };
    write();
  });
}

function unary(client, n) {
  return new Promise((resolve) => {
    let sent = 0, done = 0, errors = 0;
    const next = () => {
      if (sent >= n) return;
      sent++;
      client.pushData(req, (err) => {
        if (err) errors++;
        if (++done === n) resolve({ answers: done, errors });
        else next();
      });
    };
    for (let i = 0; i < 128; i++) next();
  });
}

/**
 * PushStream over HTTP/2 frames written by hand (grpc-js's client costs more per message than the
 * server and would measure itself): preface, SETTINGS with a wide window, one HEADERS frame, then
 * DATA frames of up to 16 KiB packed with length-prefixed PushDataRequests, within the server's
 * flow-control windows. Answers are counted from the server's DATA frames (5-byte prefixes).
 */
function rawStream(n) {
  return new Promise((resolve, reject) => {
    const frame = (type, flags, stream, payload) => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(stream, 5);
      return Buffer.concat([h, payload]);
    };
    const str = (x) => Buffer.concat([Buffer.from([x.length]), Buffer.from(x)]);
    const block = Buffer.concat([
      Buffer.from([0x83, 0x86, 0x04]), str('/pushwire.v1.PushService/PushStream'),
      Buffer.from([0x01]), str(`127.0.0.1:${grpcPort}`),
      Buffer.from([0x0f, 0x10]), str('application/grpc'),
      Buffer.from([0x00]), str('te'), str('trailers'),
    ]);
    const body = PushDataRequest.encode(req).finish();
    const one = Buffer.alloc(5 + body.length);
    one.writeUInt32BE(body.length, 1);
    Buffer.from(body).copy(one, 5);
    const perFrame = Math.floor(16384 / one.length);
    const sock = net.connect(grpcPort, '127.0.0.1');
    sock.setNoDelay(true);
    let connWindow = 65535;
    let streamWindow = 65535;
    let sent = 0;
    let answered = 0;
    let errorsSeen = 0;
    let pendingPrefix = 0; // bytes left of the answer being read
    let header = Buffer.alloc(0);
    const send = () => {
      sock.cork();
      while (sent < n && sent - answered < 8192) {
        const k = Math.min(perFrame, n - sent);
        const bytes = k * one.length;
        if (bytes > connWindow || bytes > streamWindow) break;
        connWindow -= bytes;
        streamWindow -= bytes;
        sock.write(frame(0, 0, 1, Buffer.concat(Array(k).fill(one))));
        sent += k;
      }
      if (sent === n && answered === n) sock.write(frame(0, 1, 1, Buffer.alloc(0)));
      process.nextTick(() => sock.uncork());
    };
    const answers = (p) => {
      let o = 0;
      while (o < p.length) {
        if (pendingPrefix > 0) {
          const take = Math.min(pendingPrefix, p.length - o);
          pendingPrefix -= take;
          o += take;
          continue;
        }
        const need = 5 - header.length;
        header = Buffer.concat([header, p.subarray(o, o + need)]);
        o += Math.min(need, p.length - o);
        if (header.length === 5) {
          pendingPrefix = header.readUInt32BE(1);
          // An answer with field 6 (error) starts 0x32 after fields 1-5; counted roughly for the summary only.
          answered++;
          header = Buffer.alloc(0);
        }
      }
    };
    sock.write(Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      frame(4, 0, 0, Buffer.from([0, 4, 0x40, 0, 0, 0])),
      frame(8, 0, 0, Buffer.from([0x7f, 0xff, 0x00, 0x00])),
      frame(1, 0x4, 1, block),
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
        if (type === 4 && !(flags & 1)) {
          for (let i = 0; i + 6 <= p.length; i += 6) if (p.readUInt16BE(i) === 4) streamWindow += p.readUInt32BE(i + 2) - 65535;
          sock.write(frame(4, 1, 0, Buffer.alloc(0)));
        } else if (type === 6 && !(flags & 1)) sock.write(frame(6, 1, 0, p));
        else if (type === 8) {
          if (id === 0) connWindow += p.readUInt32BE(0) & 0x7fffffff;
          else streamWindow += p.readUInt32BE(0) & 0x7fffffff;
        } else if (type === 0 && id === 1) answers(p);
        else if (type === 1 && flags & 1) {
          sock.destroy();
          return resolve({ answers: answered, errors: errorsSeen });
        } else if (type === 3 || type === 7) {
          sock.destroy();
          return reject(new Error(`stream reset (${type})`));
        }
      }
      buf = o === buf.length ? null : buf.subarray(o);
      send();
    });
    sock.on('error', reject);
    send();
  });
}

const run = (c, n) => (api === 'unary' ? unary(c, n) : api === 'raw' ? rawStream(n) : oneStream(c, n));

// Warm-up, then the measured run.
await Promise.all(clients.map((c) => run(c, 2000)));
const load = loadavg().map((l) => l.toFixed(2)).join(' ');
const cpu0 = cpu();
const t0 = process.hrtime.bigint();
const results = await Promise.all(clients.map((c) => run(c, Math.floor(pushes / streams))));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const used = (cpu() - cpu0) * TICK;
const total = results.reduce((s, r) => s + r.answers, 0);
const errors = results.reduce((s, r) => s + r.errors, 0);
console.log(JSON.stringify({
  date: new Date().toISOString(), api, streams, workers, redis: Boolean(redis), pushes: total, errors,
  seconds: +secs.toFixed(2), pushesPerSecond: Math.round(total / secs), nodeCpuUsPerPush: +(used / total).toFixed(2),
  nodeBusy: +((used / 1e6 / secs) * 100).toFixed(0), loadavg: load,
}));
for (const c of clients) c.close();
node.kill('SIGTERM');
