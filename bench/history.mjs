#!/usr/bin/env node
// npm run bench -- history [--pushes N] [--clients C] [--fanout-pushes P] [--rounds R] [--only a,b] [--compare cli.js]
// Channel history and protocol v1 costs, side by side (bench/NOTES-history.md):
//  1. ingress: node CPU (and redis-server CPU) per accepted push, history off vs on: gRPC PushDataBatch of 100
//     pushes to one topic and to 100 topics (4 calls in flight), and unary PushData (64 in flight);
//  2. fan-out: node CPU per delivery for legacy raw, v1 JSON and v1 protobuf subscribers, C of each kind on its own
//     topic, P pushes sent in lock step (the next once every subscriber got the previous one), so every delivery is
//     one frame in one socket write for every protocol; the three kinds are interleaved within each round;
//  3. recovery: time from sending a v1 JSON `subscribe` with since {0, ""} to receiving its reply carrying 1,000
//     publications from Redis.
// CPU comes from /proc/<pid>/stat (utime+stime, 10 ms ticks: each window is sized to hundreds of ticks), so other
// load on the machine inflates it less than wall time; every figure is the median over the rounds with its range,
// and /proc/loadavg is printed before and after. --compare <path to another build's dist/src/cli.js> runs that
// build as system B beside this one (A), each with its own redis-server, every measurement interleaved A/B (the
// order alternating per round), for before/after figures on the same machine state.
// --only ingress,unary,fanout,recovery runs a subset, --match <regex> only the ingress measures it names;
// --node-flags "..." adds node flags (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
// --md writes the printed figures as bench/results/history.md, which `npm run bench -- report` carries into
// BENCHMARKS.md (only for a run of this build alone: not with --compare).
// The v1 subscribers answer the node's keepalive pings; a fan-out wait of more than 30 s fails the run (a stall).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { WebSocket } from 'ws';
import { PushDataRequest, PushServiceClient } from '../dist/gen/pushwire/v1/push.js';
import { ClientFrame, ServerFrame } from '../dist/gen/pushwire/v1/client.js';
import { freePort, median, root, sleep } from './lib/common.mjs';

const { values: opt } = parseArgs({
  args: process.argv.slice(3),
  options: {
    pushes: { type: 'string' },
    unary: { type: 'string' },
    clients: { type: 'string' },
    'fanout-pushes': { type: 'string' },
    rounds: { type: 'string' },
    only: { type: 'string' },
    compare: { type: 'string' },
    'node-flags': { type: 'string' },
    match: { type: 'string' },
    prof: { type: 'string' },
    md: { type: 'boolean' },
  },
});
const PUSHES = Number(opt.pushes ?? 20000);
// 20,000 unary calls ≈ 1 s of node CPU per window (100 ticks): 5,000 (25 ticks) moved the on/off ratio by ±20 %.
const UNARY = Number(opt.unary ?? Math.max(1000, PUSHES));
const CLIENTS = Number(opt.clients ?? 1000);
const FANOUT_PUSHES = Number(opt['fanout-pushes'] ?? 100);
const ROUNDS = Number(opt.rounds ?? 5);
const ONLY = new Set((opt.only ?? 'ingress,unary,fanout,recovery').split(','));
/** Only the ingress/unary measures whose name matches (e.g. "history on" while profiling). */
const MATCH = new RegExp(opt.match ?? '');
/** --prof <file>: system A's V8 profile of its measured windows only (bench/lib/prof-on-signal.mjs, SIGUSR2). */
const PROF = opt.prof;
const NODE_FLAGS = [...(opt['node-flags'] ?? '').split(' ').filter(Boolean), ...(PROF ? ['--import', new URL('./lib/prof-on-signal.mjs', import.meta.url).href] : [])];
const CHANNELS = JSON.stringify({ namespaces: { h: { history: { size: 2000, ttl: '10m' } } } });
const CLK_TCK = 100;
const KINDS = ['legacy', 'json', 'proto'];

const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
};
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
const procs = [];
process.on('exit', () => procs.forEach((p) => p.kill('SIGKILL')));

async function startRedis() {
  const port = await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  procs.push(p);
  await sleep(300);
  return { port, pid: p.pid };
}

async function startNode(cli, redisPort) {
  // --ping-timeout: the legacy subscribers stay silent for the whole run (they are not the measured cost).
  const args = [...NODE_FLAGS, cli, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', '--redis', `redis://127.0.0.1:${redisPort}`, '--channels', CHANNELS, '--log-level', 'info', '--max-queue-bytes', '16MiB', '--ping-timeout', '1h'];
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PUSHWIRE_PROF_FILE: PROF ?? '' } });
  procs.push(p);
  let buf = '';
  const ports = await new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        if (!line.includes('pushwire node listening')) continue;
        const l = JSON.parse(line);
        resolve({ ws: l.wsPort, grpc: l.grpcPort });
      }
    });
    p.once('exit', (code) => reject(new Error(`node exited ${code}`)));
  });
  return { pid: p.pid, proc: p, ...ports };
}

async function startSystem(name, cli) {
  const redis = await startRedis();
  const node = await startNode(cli, redis.port);
  const client = new PushServiceClient(`127.0.0.1:${node.grpc}`, credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20 });
  return { name, redis, node, client, fan: {}, profiling: false };
}

const batch = (client, pushes) =>
  new Promise((resolve, reject) => client.pushDataBatch({ pushes: pushes.map((x) => PushDataRequest.fromPartial(x)) }, (err) => (err ? reject(err) : resolve())));
const unary = (client, push) => new Promise((resolve, reject) => client.pushData(PushDataRequest.fromPartial(push), (err) => (err ? reject(err) : resolve())));

/** CPU per accepted push (node and redis): `make(i)` gives push i; `send` sends a slice of them; `inflight` calls at once. */
async function cpuPerPush(sys, total, per, inflight, make, send) {
  const warm = Array.from({ length: per }, (_, i) => make(i));
  for (let i = 0; i < 20; i++) await send(sys.client, warm);
  await profile(sys, true);
  const n0 = cpuMs(sys.node.pid);
  const r0 = cpuMs(sys.redis.pid);
  const t0 = Date.now();
  let sent = 0;
  const worker = async () => {
    while (sent < total) {
      const slice = Array.from({ length: per }, (_, i) => make(sent + i));
      sent += per;
      await send(sys.client, slice);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  const wall = (Date.now() - t0) / 1000;
  await profile(sys, false);
  return { nodeUs: ((cpuMs(sys.node.pid) - n0) * 1000) / sent, redisUs: ((cpuMs(sys.redis.pid) - r0) * 1000) / sent, rate: sent / wall };
}

/** Starts (on) or stops the profiler of system A around a measured window (a no-op without --prof). */
async function profile(sys, on) {
  if (!PROF || sys.name !== 'A' || sys.profiling === on) return;
  sys.profiling = on;
  sys.node.proc.kill('SIGUSR2');
  await sleep(on ? 200 : 1500);
}

const DATA = Buffer.alloc(100, 'x');
const INGRESS = {
  // 100 pushes of 100 bytes per PushDataBatch, 4 calls in flight.
  'batch, history off': (sys, r) => cpuPerPush(sys, PUSHES, 100, 4, () => ({ topic: `plain-${r}`, data: DATA }), batch),
  'batch, history on': (sys, r) => cpuPerPush(sys, PUSHES, 100, 4, () => ({ topic: `h:bench-${r}`, data: DATA }), batch),
  'batch of 100 topics, history off': (sys, r) => cpuPerPush(sys, PUSHES, 100, 4, (i) => ({ topic: `plain-${r}-${i % 100}`, data: DATA }), batch),
  'batch of 100 topics, history on': (sys, r) => cpuPerPush(sys, PUSHES, 100, 4, (i) => ({ topic: `h:bench-${r}-${i % 100}`, data: DATA }), batch),
};
const UNARIES = {
  'unary, history off': (sys, r) => cpuPerPush(sys, UNARY, 1, 64, () => ({ topic: `plain-u${r}`, data: DATA }), (c, [p]) => unary(c, p)),
  'unary, history on': (sys, r) => cpuPerPush(sys, UNARY, 1, 64, () => ({ topic: `h:bench-u${r}`, data: DATA }), (c, [p]) => unary(c, p)),
};

/** The v1 keepalive (docs/protocol.md, "Keepalive (v1)"): the server's ping, and the client's answer per subprotocol. */
const isPing = (kind, data) => (kind === 'json' ? data.toString().split('\n').some((l) => l.startsWith('{"ping"')) : ServerFrame.decode(data).messages.some((m) => m.ping !== undefined));
const PONG = { json: JSON.stringify({ pong: {} }), proto: ClientFrame.encode({ commands: [{ id: 0, pong: {} }] }).finish() };

/**
 * A subscriber that counts deliveries without decoding them (the bench process shares the machine: it must stay
 * cheap and never be the reason the node coalesces frames). `onDelivery` is the group's counter.
 */
function openClient(url, kind, topic, onDelivery) {
  const protocols = kind === 'legacy' ? [] : [`pushwire.v1.${kind}`];
  const ws = new WebSocket(url, protocols);
  let ready = false;
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data) => {
      if (ready) {
        // A v1 node pings every --v1-ping-interval and closes a client that does not answer within
        // --v1-pong-timeout; a ping is a few bytes, a delivery about a hundred (only short frames are decoded).
        if (kind !== 'legacy' && data.length < 32 && isPing(kind, data)) return ws.send(PONG[kind]);
        return onDelivery();
      }
      if (kind === 'legacy') {
        const text = data.toString();
        if (text.startsWith('{"code":20000')) ws.send(JSON.stringify({ code: 1, topic }));
        else if (text.startsWith('{"code":20001')) {
          ready = true;
          resolve(ws);
        }
      } else if (kind === 'json') {
        const m = JSON.parse(data.toString());
        if (m.connect) ws.send(JSON.stringify({ id: 2, subscribe: { channel: topic } }));
        else if (m.subscribe) {
          ready = true;
          resolve(ws);
        }
      } else {
        for (const m of ServerFrame.decode(data).messages) {
          if (m.connect) ws.send(ClientFrame.encode({ commands: [{ id: 2, subscribe: { channel: topic, private: false } }] }).finish());
          else if (m.subscribe) {
            ready = true;
            resolve(ws);
          }
        }
      }
    });
    ws.on('open', () => {
      if (kind === 'json') ws.send(JSON.stringify({ id: 1, connect: {} }));
      else if (kind === 'proto') ws.send(ClientFrame.encode({ commands: [{ id: 1, connect: { token: '', name: '', version: '' } }] }).finish());
    });
  });
}

/** CLIENTS subscribers of `kind` on their own topic, and a way to wait for a delivery count. */
async function openGroup(sys, kind) {
  const topic = `fan-${kind}`;
  const g = { kind, topic, got: 0, want: Infinity, wake: undefined, sockets: [] };
  const onDelivery = () => {
    if (++g.got >= g.want && g.wake) {
      const w = g.wake;
      g.wake = undefined;
      w();
    }
  };
  const url = `ws://127.0.0.1:${sys.node.ws}/ws`;
  for (let i = 0; i < CLIENTS; i += 100) g.sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, CLIENTS - i) }, () => openClient(url, kind, topic, onDelivery)))));
  g.until = (n) =>
    g.got >= n
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          // A lost delivery (a closed subscriber, a dropped frame) would otherwise hang the phase for ever.
          const stall = setTimeout(() => {
            g.wake = undefined;
            const closed = g.sockets.filter((ws) => ws.readyState !== WebSocket.OPEN).length;
            reject(new Error(`fan-out stalled: ${kind} subscribers got ${g.got} of ${n} deliveries within ${STALL_MS / 1000} s (${closed} of ${g.sockets.length} sockets closed)`));
          }, STALL_MS);
          g.want = n;
          g.wake = () => {
            clearTimeout(stall);
            resolve();
          };
        });
  return g;
}

/** A fan-out wait longer than this is a stall (every delivery of a push takes milliseconds). */
const STALL_MS = 30_000;
const FAN_DATA = Buffer.from(JSON.stringify({ n: 1, text: 'x'.repeat(80) }));

/** Node CPU per delivery: FANOUT_PUSHES pushes to the group's topic, each sent once every subscriber got the last. */
async function fanout(sys, g) {
  const one = [{ topic: g.topic, data: FAN_DATA }];
  const warm = g.got;
  await batch(sys.client, one);
  await g.until(warm + CLIENTS);
  await profile(sys, true);
  const c0 = cpuMs(sys.node.pid);
  const base = g.got;
  for (let i = 1; i <= FANOUT_PUSHES; i++) {
    await batch(sys.client, one);
    await g.until(base + i * CLIENTS);
  }
  const us = ((cpuMs(sys.node.pid) - c0) * 1000) / (FANOUT_PUSHES * CLIENTS);
  await profile(sys, false);
  return us;
}

/** ms from sending a subscribe with since to receiving its reply with 1,000 publications (v1 JSON), `n` times. */
async function recovery(sys, r, n) {
  const topic = `h:recover-${r}`;
  const data = Buffer.from('{"n":1}');
  for (let i = 0; i < 10; i++) await batch(sys.client, Array.from({ length: 100 }, () => ({ topic, data })));
  const ws = new WebSocket(`ws://127.0.0.1:${sys.node.ws}/ws`, ['pushwire.v1.json']);
  await new Promise((resolve) => ws.once('open', resolve));
  const replies = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    replies.get(m.id)?.(m);
  });
  const command = (id, body) =>
    new Promise((resolve) => {
      replies.set(id, resolve);
      ws.send(JSON.stringify({ id, ...body }));
    });
  await command(1, { connect: {} });
  await profile(sys, true);
  const times = [];
  for (let i = 0; i < n + 1; i++) {
    const t0 = process.hrtime.bigint();
    const reply = await command(10 + i, { subscribe: { channel: topic, since: { offset: 0, epoch: '' } } });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i > 0) times.push(ms); // the first one warms the code paths up
    if (!reply.subscribe.recovered || reply.subscribe.publications.length !== 1000) throw new Error(`recovery returned ${reply.subscribe.publications?.length}`);
    await command(1000 + i, { unsubscribe: { channel: topic } });
  }
  ws.close();
  await profile(sys, false);
  return times;
}

const stat = (xs, d = 1) => `${median(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}]`;

// Everything printed is also kept for --md.
const printed = [];
const log = console.log;
console.log = (...a) => {
  printed.push(a.join(' '));
  log(...a);
};
const startedAt = new Date();

const systems = [await startSystem('A', `${root}dist/src/cli.js`)];
if (opt.compare) systems.push(await startSystem('B', opt.compare));
const label = systems.length > 1 ? `A = ${root}dist, B = ${opt.compare}; ` : '';
console.log(
  `history bench: ${label}${PUSHES} pushes per batch window, ${UNARY} per unary window, ${CLIENTS} clients × ${FANOUT_PUSHES} pushes per fan-out window, ${ROUNDS} rounds; figures: median [min–max]; loadavg before: ${loadavg()}`,
);
/** The systems in an order that alternates per round (A B, B A, ...). */
const order = (r) => (r % 2 === 0 ? systems : [...systems].reverse());
const res = new Map(); // `${sys} ${measure}` -> values
const add = (sys, k, v) => {
  const key = `${sys.name} ${k}`;
  if (!res.has(key)) res.set(key, []);
  res.get(key).push(v);
};
const vals = (sys, k) => res.get(`${sys.name} ${k}`) ?? [];

function printIngress(measures) {
  for (const name of Object.keys(measures).filter((k) => MATCH.test(k))) {
    for (const sys of systems) {
      const xs = vals(sys, name);
      console.log(
        `  ${systems.length > 1 ? `${sys.name} ` : ''}${name.padEnd(34)} node ${stat(xs.map((x) => x.nodeUs))} µs/push, redis ${stat(xs.map((x) => x.redisUs))} µs/push, ${stat(xs.map((x) => x.rate / 1000))} k pushes/s`,
      );
    }
  }
  for (const sys of systems) {
    for (const [off, on] of Object.keys(measures).reduce((pairs, k) => (k.endsWith('off') && MATCH.test(k) && MATCH.test(k.replace(/off$/, 'on')) ? [...pairs, [k, k.replace(/off$/, 'on')]] : pairs), [])) {
      const n = (k) => median(vals(sys, k).map((x) => x.nodeUs));
      const t = (k) => median(vals(sys, k).map((x) => x.nodeUs + x.redisUs));
      console.log(`  ${systems.length > 1 ? `${sys.name} ` : ''}${on.replace(/, history on$/, '')}: history costs ${((n(on) / n(off) - 1) * 100).toFixed(0)} % more node CPU per push (${((t(on) / t(off) - 1) * 100).toFixed(0)} % node+redis); target ≤ 25 %`);
    }
  }
}

for (const [part, measures] of [['ingress', INGRESS], ['unary', UNARIES]]) {
  if (!ONLY.has(part)) continue;
  for (let r = 0; r < ROUNDS; r++) for (const sys of order(r)) for (const [k, f] of Object.entries(measures)) if (MATCH.test(k)) add(sys, k, await f(sys, r));
  console.log(`${part} (loadavg ${loadavg()}):`);
  printIngress(measures);
}

if (ONLY.has('fanout')) {
  for (const sys of systems) for (const kind of KINDS) sys.fan[kind] = await openGroup(sys, kind);
  for (let r = 0; r < ROUNDS; r++) {
    // The kinds rotate per round, so none is always measured first (or right after connection set-up).
    const kinds = KINDS.map((_, i) => KINDS[(i + r) % KINDS.length]);
    for (const sys of order(r)) for (const kind of kinds) add(sys, `fan ${kind}`, await fanout(sys, sys.fan[kind]));
  }
  console.log(`fan-out, node CPU per delivery (loadavg ${loadavg()}):`);
  for (const sys of systems) {
    const legacy = median(vals(sys, 'fan legacy'));
    for (const kind of KINDS) {
      const xs = vals(sys, `fan ${kind}`);
      const rel = kind === 'legacy' ? '' : ` (${((median(xs) / legacy - 1) * 100).toFixed(0)} % vs legacy raw; per-round ratios ${stat(xs.map((x, i) => (x / vals(sys, 'fan legacy')[i] - 1) * 100), 0)} %; target within 10 %)`;
      console.log(`  ${systems.length > 1 ? `${sys.name} ` : ''}${kind.padEnd(6)}: ${stat(xs, 2)} µs${rel}`);
    }
  }
  for (const sys of systems) for (const g of Object.values(sys.fan)) for (const ws of g.sockets) ws.terminate();
  await sleep(1000);
}

if (ONLY.has('recovery')) {
  for (let r = 0; r < ROUNDS; r++) for (const sys of order(r)) for (const ms of await recovery(sys, r, 5)) add(sys, 'recovery', ms);
  console.log(`recovery of 1,000 missed publications (v1 JSON, Redis), ${ROUNDS * 5} subscribes (loadavg ${loadavg()}):`);
  for (const sys of systems) console.log(`  ${systems.length > 1 ? `${sys.name} ` : ''}${stat(vals(sys, 'recovery'))} ms; target ≤ 20 ms`);
}

console.log(`loadavg after: ${loadavg()}`);
if (opt.md && !opt.compare) {
  const args = process.argv.slice(3).filter((a) => a !== '--md').join(' ');
  const md = [
    '## Channel history and protocol v1 (issue 10)',
    '',
    `Command: \`${`npm run bench -- history ${args}`.trim()} --md\`, ${startedAt.toISOString()}. What each figure is: the`,
    '`bench/history.mjs` header; A/B runs and profiles in `bench/NOTES-history.md`. Node and redis-server CPU from',
    '`/proc`; every figure is the median [min–max] over the rounds; the load average is printed beside each part.',
    '',
    '```',
    ...printed,
    '```',
    '',
  ];
  writeFileSync(`${root}bench/results/history.md`, `${md.join('\n')}\n`);
  log(`wrote ${root}bench/results/history.md`);
}
for (const sys of systems) {
  sys.client.close();
  // SIGTERM: a node started with --cpu-prof writes its profile on a clean exit.
  sys.node.proc.kill('SIGTERM');
}
await Promise.all(systems.map((s) => new Promise((r) => (s.node.proc.exitCode !== null ? r() : s.node.proc.once('exit', r)))));
process.exit(0);
