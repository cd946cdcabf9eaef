// Scale runs (issue 12): `npm run bench -- scale` and `npm run bench -- storm`. Not part of `all`: they are heavy.
//
// scale: N pushwire nodes (the real CLI) on one Redis and on a 3-master Redis Cluster, load-generator processes
//   holding C live WebSocket connections subscribed to one topic, then broadcasts and topic pushes reaching all of
//   them: RSS per node and per connection, push → last delivery, p50/p99 latency, server CPU per delivery.
// Another build: PUSHWIRE_CLI=/path/to/dist/src/cli.js (bench/lib/systems.mjs), e.g. a worktree of main for A/B.
// storm: C logged-in clients connecting as fast as the load generator can (the issue asks 20,000 in 10 s), then all
//   dropped at once: Redis commands per connect and per disconnect (INFO commandstats deltas), and the time until
//   presence (CountOnline) is right again; with no backend consumer (connection events skipped by the consumer
//   signal) and with one consumer connected (every connect/disconnect dispatched).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, cpuUs, fmtInt, freePort, log, nowUs, rssBytes, sleep, summarize, track } from './lib/common.mjs';
import { runPushers, startClients } from './lib/load.mjs';
import { startPushwireNode, startRedis } from './lib/systems.mjs';

const redisCli = (port, ...args) => execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });

async function waitPing(port) {
  for (let i = 0; i < 200; i++) {
    try {
      if (redisCli(port, 'PING').trim() === 'PONG') return;
    } catch {
      /* starting */
    }
    await sleep(50);
  }
  throw new Error(`redis-server on ${port} did not start`);
}

/** A 3-master Redis Cluster (no replicas: the scale run measures capacity, not failover). */
async function startRedisCluster(masters = 3) {
  const dir = mkdtempSync(join(os.tmpdir(), 'pushwire-bench-cluster-'));
  const nodes = [];
  for (let i = 0; i < masters; i++) {
    const [port, busPort] = [await freePort(), await freePort()];
    const proc = track(
      spawn('redis-server', ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `n-${port}.conf`), '--cluster-require-full-coverage', 'no', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }),
    );
    nodes.push({ port, proc, pid: proc.pid });
  }
  for (const n of nodes) await waitPing(n.port);
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !nodes.every((n) => redisCli(n.port, 'CLUSTER', 'INFO').includes('cluster_state:ok')); i++) await sleep(100);
  return { url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`, pids: nodes.map((n) => n.pid), ports: nodes.map((n) => n.port), kill: () => nodes.forEach((n) => n.proc.kill('SIGKILL')) };
}

async function startRedisMode(mode) {
  if (mode === 'cluster') return startRedisCluster(3);
  const r = await startRedis();
  return { url: r.url, pids: [r.pid], ports: [r.port], kill: () => r.proc.kill('SIGKILL') };
}

async function startNodes(redisUrl, n, extra = []) {
  const nodes = [];
  // One at a time: eight node processes starting at once on two cores take longer than the harness waits.
  for (let i = 0; i < n; i++) nodes.push(await startPushwireNode(['--redis', redisUrl, '--node-id', `scale${i}`, ...extra]));
  return nodes;
}

/** Sum of Redis commands processed (INFO stats) and per command (INFO commandstats) over every server. */
function commandStats(ports) {
  const out = { total: 0, by: {} };
  for (const p of ports) {
    for (const line of redisCli(p, 'INFO', 'commandstats').split('\n')) {
      const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
      if (m) {
        out.by[m[1]] = (out.by[m[1]] ?? 0) + Number(m[2]);
        out.total += Number(m[2]);
      }
    }
  }
  return out;
}

const diffStats = (a, b, per) => {
  const by = {};
  for (const [k, v] of Object.entries(b.by)) {
    const d = v - (a.by[k] ?? 0);
    if (d > 0) by[k] = +(d / per).toFixed(3);
  }
  return { perOp: +((b.total - a.total) / per).toFixed(3), byCommand: by };
};

async function countOnline(node) {
  // A poll that fails (a reset connection on the starved box) is retried and logged, not the end of the run.
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await fetch(`${node.http}/v1/projects/default/online-users:count`);
      const j = await r.json();
      return { users: Number(j.users ?? 0), connections: Number(j.connections ?? 0) };
    } catch (err) {
      if (attempt >= 5) throw err;
      log(`  CountOnline poll failed (${err.cause?.code ?? err.message}), retrying`);
      await sleep(200);
    }
  }
}

/** RSS of each node after a forced GC (the nodes run with bench/lib/gc-on-signal.mjs: SIGUSR2 → gc()). */
async function gcRss(nodes) {
  await sleep(1000);
  for (const n of nodes) n.proc.kill('SIGUSR2');
  await sleep(1500);
  return nodes.map((n) => rssBytes(n.pid));
}

/** One push (broadcast when topic is '') to every client; returns its figures. */
async function pushToAll(sys, clients, topic, L) {
  clients.reset();
  const got0 = clients.got;
  const cpu0 = cpuUs(sys.serverPids);
  // One delivery per connection that is subscribed (the run stops opening connections before it pushes).
  const wait = clients.expect((k) => k.subscribed - k.closed, { stallS: 10 });
  const pusher = runPushers({ api: 'grpc', targets: [sys.nodes[0].grpc], topic, payload: 100, rate: 0, inflight: 1, count: 1 });
  const p = await pusher.done;
  const end = await wait(() => pusher.running, p.t0 + 120e6);
  const cpu1 = cpuUs(sys.serverPids);
  const delivered = clients.got - got0;
  const r = {
    target: topic === '' ? 'broadcast' : `topic ${topic}`,
    delivered,
    complete: end.complete,
    pushToLastDeliveryMs: +((end.t - p.t0) / 1000).toFixed(1),
    latencyMs: summarize(await clients.hist()),
    serverCpuUsPerDelivery: +((cpu1 - cpu0) / delivered).toFixed(3),
    pushErrors: p.errors,
    lastPushError: p.lastError || undefined,
  };
  log(`  ${L} ${r.target}: ${fmtInt(delivered)} delivered, last after ${r.pushToLastDeliveryMs} ms, p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms, ${r.serverCpuUsPerDelivery} µs CPU/delivery`);
  return r;
}

async function scaleOne(mode, o) {
  const L = `[scale ${mode} ×${o.nodes}]`;
  log(`${L} ${fmtInt(o.clients)} clients over ${o.nodes} nodes (${fmtInt(Math.ceil(o.clients / o.nodes))} per node), ${o.perProc} per load process; loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const redis = await startRedisMode(mode);
  // Legacy load clients are silent after subscribing: a connect phase longer than --ping-timeout would have the
  // nodes close the first connections before the pushes (the default bench node runs with 600 s).
  const nodes = await startNodes(redis.url, o.nodes, ['--ping-timeout', `${o.connectTimeout + 900}s`]);
  const sys = { system: 'pushwire', nodes, serverPids: [...nodes.map((n) => n.pid), ...redis.pids] };
  const rssBefore = await gcRss(nodes);
  const clients = startClients(sys, o.clients, 'public', { topic: 'scale', perProc: o.perProc, label: L, concurrency: o.concurrency });
  const t0 = Date.now();
  try {
    let connected = true;
    let connectError;
    try {
      await clients.ready(o.connectTimeout);
    } catch (err) {
      connected = false;
      connectError = err.message;
    }
    const connectS = (Date.now() - t0) / 1000;
    // What connected within the window is what is measured: no connection setup competes with the pushes.
    clients.stop();
    await sleep(3000);
    // The load clients do not reconnect: a closed connection is not live (a close before subscribing makes this a
    // lower bound; the run reports both counts).
    const live = clients.kids.reduce((a, k) => a + k.subscribed, 0) - clients.closed;
    const rssAfter = await gcRss(nodes);
    const perNodeMiB = rssAfter.map((b) => +(b / 2 ** 20).toFixed(1));
    const rssPerConnKB = +((rssAfter.reduce((a, b) => a + b, 0) - rssBefore.reduce((a, b) => a + b, 0)) / live / 1024).toFixed(2);
    log(`  ${L} ${fmtInt(live)} subscribed in ${connectS.toFixed(1)} s; node RSS ${perNodeMiB.join(', ')} MiB; ${rssPerConnKB} KB RSS per connection`);
    const pushes = [];
    if (live > 0) {
      for (const topic of ['', 'scale', '', 'scale']) pushes.push(await pushToAll(sys, clients, topic, L));
    }
    return {
      mode,
      nodes: o.nodes,
      clientsWanted: o.clients,
      clientsLive: live,
      closedConnections: clients.closed,
      connected,
      connectError,
      connectSeconds: +connectS.toFixed(1),
      loadProcesses: clients.kids.length,
      nodeRssMiB: perNodeMiB,
      rssPerConnKB,
      redisRssMiB: +(redis.pids.reduce((a, p) => a + rssBytes(p), 0) / 2 ** 20).toFixed(1),
      pushes,
      loadavg: os.loadavg(),
    };
  } finally {
    clients.kill();
    for (const n of nodes) n.proc.kill('SIGKILL');
    redis.kill();
    await sleep(500);
  }
}

async function stormOne(mode, withConsumer, o) {
  const L = `[storm ${mode}${withConsumer ? ' +consumer' : ''}]`;
  log(`${L} ${fmtInt(o.clients)} logged-in clients on ${o.nodes} nodes; loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const redis = await startRedisMode(mode);
  const nodes = await startNodes(redis.url, o.nodes, ['--presence-ttl', '30s', '--consumer-ttl', '3s']);
  const sys = { system: 'pushwire', nodes, serverPids: [...nodes.map((n) => n.pid), ...redis.pids] };
  let consumer;
  try {
    if (withConsumer) {
      const { credentials } = await import('@grpc/grpc-js');
      const { BackendServiceClient } = await import(new URL('../dist/gen/pushwire/v1/backend.js', import.meta.url));
      const client = new BackendServiceClient(nodes[0].grpc, credentials.createInsecure());
      const stream = client.connect({ pid: '', group: 'storm' });
      let events = 0;
      stream.on('data', () => events++);
      stream.on('error', () => {});
      consumer = { client, stream, events: () => events };
    }
    // Past the consumer signal's start-up window (--consumer-ttl): connection events go only where consumers are.
    await sleep(4000);
    const s0 = commandStats(redis.ports);
    const t0 = Date.now();
    const nodePids = nodes.map((n) => n.pid);
    const cpu0 = { node: cpuUs(nodePids), redis: cpuUs(redis.pids) };
    const clients = startClients(sys, o.clients, 'private', { topic: 'inbox', perProc: o.perProc, label: L, concurrency: o.concurrency });
    await clients.ready(o.connectTimeout);
    const connectS = (Date.now() - t0) / 1000;
    // Where the connect window's CPU went (the load processes' counted from their start, token signing included).
    const cpuPerConnect = {
      nodeUs: +((cpuUs(nodePids) - cpu0.node) / o.clients).toFixed(1),
      redisUs: +((cpuUs(redis.pids) - cpu0.redis) / o.clients).toFixed(1),
      loadUs: +(cpuUs(clients.pids) / o.clients).toFixed(1),
    };
    let online;
    for (;;) {
      online = await countOnline(nodes[0]);
      if (online.connections >= o.clients || Date.now() - t0 > 120_000) break;
      await sleep(100);
    }
    const presenceS = (Date.now() - t0) / 1000;
    await sleep(1500); // the last unsubscribe delays and outbox sends
    const s1 = commandStats(redis.ports);
    const t1 = Date.now();
    clients.kill();
    for (;;) {
      online = await countOnline(nodes[0]);
      if (online.connections === 0 || Date.now() - t1 > 120_000) break;
      await sleep(100);
    }
    const goneS = (Date.now() - t1) / 1000;
    await sleep(1500);
    const s2 = commandStats(redis.ports);
    const r = {
      mode,
      withConsumer,
      nodes: o.nodes,
      clients: o.clients,
      connectSeconds: +connectS.toFixed(1),
      presenceRightAfterConnectS: +presenceS.toFixed(1),
      presenceEmptyAfterDropS: +goneS.toFixed(1),
      cpuPerConnect,
      redisPerConnect: diffStats(s0, s1, o.clients),
      redisPerDisconnect: diffStats(s1, s2, o.clients),
      consumerEvents: consumer?.events(),
      loadavg: os.loadavg(),
    };
    log(`  ${L} CPU per connect: nodes ${cpuPerConnect.nodeUs} µs, redis ${cpuPerConnect.redisUs} µs, load generator ${cpuPerConnect.loadUs} µs`);
    log(`  ${L} connected in ${r.connectSeconds} s, presence right after ${r.presenceRightAfterConnectS} s; dropped: presence empty after ${r.presenceEmptyAfterDropS} s; Redis commands per connect ${r.redisPerConnect.perOp} ${JSON.stringify(r.redisPerConnect.byCommand)}, per disconnect ${r.redisPerDisconnect.perOp} ${JSON.stringify(r.redisPerDisconnect.byCommand)}`);
    return r;
  } finally {
    consumer?.stream.cancel();
    consumer?.client.close();
    // PUSHWIRE_BENCH_PROF_DIR (bench/lib/systems.mjs): a node writes its .cpuprofile only when it exits by itself.
    if (process.env.PUSHWIRE_BENCH_PROF_DIR) await Promise.all(nodes.map((n) => new Promise((r) => (n.proc.once('exit', r), n.proc.kill('SIGTERM')))));
    for (const n of nodes) n.proc.kill('SIGKILL');
    redis.kill();
    await sleep(500);
  }
}

export async function main(scenario, argv) {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      clients: { type: 'string' },
      redis: { type: 'string' }, // standalone,cluster
      'per-proc': { type: 'string' },
      concurrency: { type: 'string' },
      'connect-timeout': { type: 'string' },
    },
  });
  const o = {
    nodes: Number(values.nodes ?? (scenario === 'scale' ? 6 : 2)),
    clients: Number(values.clients ?? (scenario === 'scale' ? 100_000 : 20_000)),
    perProc: Math.min(4000, Number(values['per-proc'] ?? 4000)),
    concurrency: Number(values.concurrency ?? 50),
    connectTimeout: Number(values['connect-timeout'] ?? 600),
  };
  const modes = (values.redis ?? 'standalone,cluster').split(',');
  const started = new Date().toISOString();
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, nofile: execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim(), loadavgAtStart: os.loadavg() };
  const runs = [];
  for (const mode of modes) {
    if (scenario === 'scale') runs.push(await scaleOne(mode, o));
    else for (const withConsumer of [false, true]) runs.push(await stormOne(mode, withConsumer, o));
  }
  const out = { scenario, started, args: argv.join(' '), machine, runs };
  mkdirSync(`${benchDir}results`, { recursive: true });
  const file = `${benchDir}results/${scenario}-${started.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  // The committed copy BENCHMARKS.md is generated from (bench/report-scale.mjs).
  writeFileSync(`${benchDir}results/${scenario}-latest.json`, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${file} and bench/results/${scenario}-latest.json`);
}
