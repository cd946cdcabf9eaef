#!/usr/bin/env node
// pushwire benchmark harness. Usage: npm run bench -- <fanout|private|idle|ingress|latency|all|report> [options],
// or npm run bench -- <scale|storm> [--nodes N --clients C --redis standalone,cluster] (bench/scale.mjs).
// See BENCHMARKS.md for what each scenario measures. Needs `npm run build` (the npm script runs it) and
// redis-server on PATH.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { benchDir, cpuUs, fmtInt, installExitHandlers, killAll, log, nowUs, rssSum, sleep, summarize } from './lib/common.mjs';
import { runPushers, startClients } from './lib/load.mjs';
import { gcAndMeasure, startSystem } from './lib/systems.mjs';
import { generateReport } from './report.mjs';
import { collectRounds } from './report-rounds.mjs';

// `history` is its own script (channel history and protocol v1 costs), with its own options.
if (process.argv[2] === 'history') {
  await import('./history.mjs');
  await new Promise(() => {});
}
// Issue 12's heavy runs have their own options (bench/scale.mjs) and are not part of `all`.
if (process.argv[2] === 'scale' || process.argv[2] === 'storm') {
  installExitHandlers();
  const { main } = await import('./scale.mjs');
  await main(process.argv[2], process.argv.slice(3));
  killAll();
  process.exit(0);
}

const SCENARIOS = ['fanout', 'private', 'idle', 'ingress', 'latency'];
const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    systems: { type: 'string' }, // comma list of pushwire,socketio,ws
    nodes: { type: 'string' }, // fanout: "1,2"; others: one number
    clients: { type: 'string' },
    pushes: { type: 'string' },
    rate: { type: 'string' }, // pushes/s (private), 0 = as fast as accepted (fanout)
    rates: { type: 'string' }, // latency: delivery-rate steps, e.g. 10000,50000,100000,200000
    payload: { type: 'string' },
    duration: { type: 'string' }, // s: private/ingress run, latency step
    inflight: { type: 'string' },
    pushers: { type: 'string' }, // pusher processes (ingress)
    channels: { type: 'string' }, // ingress: gRPC connections per pusher process
    client: { type: 'string' }, // ingress: gRPC client of the pushers, h2 (lean node:http2) or grpc-js
    'per-proc': { type: 'string' }, // clients per load process (≤ 4000)
    pin: { type: 'boolean' }, // latency: servers and load generator on their own cores (taskset), when there are ≥ 4
    'push-api': { type: 'string' }, // fanout/latency: pushwire over grpc (default) or rest
    'client-impl': { type: 'string' }, // fanout/latency: ws (default) or raw (lean WebSocket client; pushwire and ws)
    settle: { type: 'string' }, // idle: s to wait before measuring
    workers: { type: 'string' }, // pushwire nodes run `serve --workers N`
    rounds: { type: 'string' }, // all: run every scenario N times; the report gives median and range
    'rounds-since': { type: 'string' }, // report: gather the result files of runs started since this time as rounds
    'no-latest': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

const scenario = positionals[0];
if (opt.help || !scenario || ![...SCENARIOS, 'all', 'report'].includes(scenario)) {
  process.stderr.write(`usage: npm run bench -- <${[...SCENARIOS, 'all', 'report'].join('|')}> [options]
  npm run bench -- history [--pushes N --clients C --fanout-pushes P --rounds R]   history on/off, v1 fan-out, recovery (bench/history.mjs)
  --systems pushwire,socketio,ws   systems to run (default all three)
  --nodes N                        server nodes (fanout: a list, default 1,2; 2 nodes use a private redis-server)
  --clients N --pushes M --payload B --rate R (pushes/s) --duration S --inflight K
  --rates 10000,50000,...          latency: delivery-rate steps (deliveries/s)
  --pushers P                      ingress: pusher processes
  --channels C --client raw|h2|grpc-js  ingress: gRPC connections per pusher, gRPC client (raw: hand-written HTTP/2
                                   frames, unary only; h2: lean node:http2; grpc-js)
  --per-proc N                     clients per load-generator process (max 4000)
  --pin                            latency: servers on the first half of the cores, load generator on the other (taskset);
                                   with fewer than 4 cores the run says so and shares them
  --push-api grpc|rest             fanout/latency: how pushwire is pushed (default grpc); results carry ackMs (answer times)
  --client-impl ws|raw             fanout/latency: raw = lean WebSocket client (pushwire, ws) to size the load generator's share
  --workers N                      each pushwire node runs \`serve --workers N\` (CPU and RSS summed over its workers)
  --rounds N                       all: run the whole set N times; BENCHMARKS.md gets median [min–max] per figure
  --rounds-since <ISO time>        report: take the runs started since then (bench/results/*.json) as the rounds
  --no-latest                      do not update bench/results/latest.json
`);
  process.exit(scenario ? 2 : 0);
}

const num = (v, d) => (v === undefined ? d : Number(v));
const systemsOpt = (opt.systems ?? 'pushwire,socketio,ws').split(',').map((s) => s.trim()).filter(Boolean);
for (const s of systemsOpt) if (!['pushwire', 'socketio', 'ws'].includes(s)) throw new Error(`unknown system ${s}`);
const perProc = num(opt['per-proc'], 2500);
const clientImpl = opt['client-impl'] ?? 'ws';
const MAX_PER_NODE = 18_000;
const resultsDir = `${benchDir}results/`;
mkdirSync(resultsDir, { recursive: true });

installExitHandlers();

// ---- scenarios -------------------------------------------------------------------------------------------------
const label = (system, nodes) => `[${system} ×${nodes}]`;
const checkPerNode = (clients, nodes) => {
  if (clients / nodes > MAX_PER_NODE) throw new Error(`${clients} clients over ${nodes} node(s) is more than ${MAX_PER_NODE} per server process`);
};

/** Warm-up: a few pushes delivered everywhere, then the histogram is cleared. */
async function warmUp(sys, clients, api, topic, pushes = 20) {
  const wait = clients.expect(pushes, { stallS: 5 });
  const p = runPushers({ api, targets: targetsOf(sys, api), topic, payload: 100, rate: 0, inflight: 4, count: pushes });
  const r = await p.done;
  const end = await wait();
  if (!end.complete) throw new Error(`warm-up: ${clients.got} of ${pushes * clients.kids.reduce((a, k) => a + k.n, 0)} deliveries arrived (push errors ${r.errors}${r.lastError ? `: ${r.lastError}` : ''})`);
  await sleep(300);
  clients.reset();
}

const targetsOf = (sys, api) => sys.nodes.map((n) => (api === 'grpc' || api === 'batch' ? n.grpc : n.http));
// pushwire is pushed over gRPC unless --push-api rest (the REST bridge); the baselines over HTTP.
const pushApi = (system) => (system === 'pushwire' ? (opt['push-api'] ?? 'grpc') : 'http');

async function fanoutOne(system, nodes, o) {
  const L = label(system, nodes);
  checkPerNode(o.clients, nodes);
  log(`${L} fanout: ${o.clients} clients, ${o.pushes} pushes of ${o.payload} B, ≤${o.inflight} in flight`);
  const sys = await startSystem(system, nodes);
  const clients = startClients(sys, o.clients, 'public', { topic: 'bench', perProc, label: L, impl: clientImpl });
  try {
    await clients.ready();
    await warmUp(sys, clients, pushApi(system), 'bench');
    const expected = o.clients * o.pushes;
    const got0 = clients.got;
    const cpu0 = cpuUs(sys.serverPids);
    let pusher;
    const wait = clients.expect(o.pushes, {
      stallS: 5,
      progress: () => log(`  ${L} delivered ${fmtInt(clients.got - got0)}/${fmtInt(expected)}, pushes acked ${fmtInt(pusher?.acked ?? 0)}/${o.pushes}`),
    });
    pusher = runPushers({ api: pushApi(system), targets: targetsOf(sys, pushApi(system)), topic: 'bench', payload: o.payload, rate: 0, inflight: o.inflight, count: o.pushes });
    const p = await pusher.done;
    const end = await wait(() => pusher.running);
    return {
      system,
      nodes,
      clients: o.clients,
      pushes: o.pushes,
      payload: o.payload,
      expected,
      ...(await measured(sys, clients, got0, cpu0, p, end)),
    };
  } finally {
    clients.kill();
    await sys.stop();
  }
}

/**
 * The figures a delivery run reports, over its measured window: from `cpu0` (taken when the
 * pushers started) to the end of delivery.
 */
async function measured(sys, clients, got0, cpu0, p, end) {
  const cpu1 = cpuUs(sys.serverPids);
  const delivered = clients.got - got0;
  const secs = (end.t - p.t0) / 1e6;
  return {
    delivered,
    complete: end.complete,
    seconds: +secs.toFixed(2),
    deliveriesPerSec: Math.round(delivered / secs),
    cpuUsPerDelivery: +((cpu1 - cpu0) / delivered).toFixed(3),
    serverCpuSeconds: +((cpu1 - cpu0) / 1e6).toFixed(2),
    latencyMs: summarize(await clients.hist()),
    serverRssMiB: +(rssSum(sys.serverPids) / 2 ** 20).toFixed(1),
    ingressCallsPerSec: Math.round(p.acked / ((p.t1 - p.t0) / 1e6)),
    ackMs: p.ackMs,
    pushErrors: p.errors,
    lastPushError: p.lastError || undefined,
    clientCloses: clients.closed,
  };
}

async function privateOne(system, nodes, o) {
  const L = label(system, nodes);
  checkPerNode(o.clients, nodes);
  const perUser = Math.max(1, Math.round((o.rate * o.duration) / o.clients));
  const pushes = perUser * o.clients;
  log(`${L} private: ${o.clients} logged-in clients, each on its own private topic; ${pushes} targeted pushes at ${o.rate}/s`);
  const sys = await startSystem(system, nodes);
  const clients = startClients(sys, o.clients, 'private', { topic: 'inbox', perProc, label: L });
  try {
    await clients.ready();
    const got0 = clients.got;
    const cpu0 = cpuUs(sys.serverPids);
    let pusher;
    const wait = clients.expect(perUser, {
      stallS: 5,
      progress: () => log(`  ${L} delivered ${fmtInt(clients.got - got0)}/${fmtInt(pushes)}, pushes sent ${fmtInt(pusher?.sent ?? 0)}`),
    });
    pusher = runPushers({ api: pushApi(system), targets: targetsOf(sys, pushApi(system)), topic: 'inbox', users: o.clients, payload: o.payload, rate: o.rate, inflight: o.inflight, count: pushes });
    const p = await pusher.done;
    const end = await wait(() => pusher.running);
    return {
      system,
      nodes,
      clients: o.clients,
      pushes,
      targetRate: o.rate,
      payload: o.payload,
      expected: pushes,
      ...(await measured(sys, clients, got0, cpu0, p, end)),
    };
  } finally {
    clients.kill();
    await sys.stop();
  }
}

async function idleOne(system, nodes, o) {
  const L = label(system, nodes);
  checkPerNode(o.clients, nodes);
  log(`${L} idle: ${o.clients} connections, one subscription each (a topic per connection)`);
  const sys = await startSystem(system, nodes);
  let clients;
  try {
    await sleep(1000);
    const before = await gcAndMeasure(sys);
    clients = startClients(sys, o.clients, 'idle', { topic: 'idle', perProc, label: L });
    await clients.ready();
    log(`  ${L} settling ${o.settle} s`);
    await sleep(o.settle * 1000);
    const after = await gcAndMeasure(sys);
    return {
      system,
      nodes,
      connections: o.clients,
      rssBeforeMiB: +(before.rss / 2 ** 20).toFixed(1),
      rssAfterMiB: +(after.rss / 2 ** 20).toFixed(1),
      rssPerConnKB: +((after.rss - before.rss) / o.clients / 1024).toFixed(2),
      heapBeforeMiB: +(before.heapUsed / 2 ** 20).toFixed(1),
      heapAfterMiB: +(after.heapUsed / 2 ** 20).toFixed(1),
      heapPerConnKB: +((after.heapUsed - before.heapUsed) / o.clients / 1024).toFixed(2),
      clientCloses: clients.closed,
    };
  } finally {
    clients?.kill();
    await sys.stop();
  }
}

async function ingressOne(system, nodes, api, o) {
  const L = `${label(system, nodes)} ${api}`;
  const grpcApi = api === 'grpc' || api === 'batch';
  // pushwire's gRPC calls come from lean clients (grpc-js's own client costs more CPU per call than the server,
  // so with it the run measured the load generator); several connections per pusher process.
  // The raw client (hand-written HTTP/2 frames, a few µs per call) covers unary PushData; batches use the h2 client.
  const client = grpcApi ? (api === 'batch' && o.client === 'raw' ? 'h2' : o.client) : undefined;
  const channels = grpcApi ? o.channels : 1;
  const inflight = api === 'batch' ? o.batchInflight : o.inflight;
  log(`${L} ingress: ${o.pushers} pusher processes${client ? ` (${client} client, ${channels} channels each)` : ''} × ${inflight} in flight${api === 'batch' ? ` × ${o.batchSize} per batch` : ''} for ${o.duration} s, topic with 0 subscribers`);
  const sys = await startSystem(system, nodes, { redis: true });
  try {
    // warm-up
    await runPushers({ api, client, channels, targets: targetsOf(sys, api), topic: 'nobody', payload: o.payload, rate: 0, inflight: 16, count: 3000, batchSize: o.batchSize }).done;
    const okCounter = system === 'pushwire' ? () => scrapeCounter(sys, 'pushwire_pushes_total', grpcApi ? 'grpc' : 'http') : async () => undefined;
    const ok0 = await okCounter();
    const cpu0 = cpuUs(sys.serverPids);
    const nodeCpu0 = cpuUs(sys.nodePids);
    const p = await runPushers(
      { api, client, channels, targets: targetsOf(sys, api), topic: 'nobody', payload: o.payload, rate: 0, inflight, duration: o.duration, batchSize: o.batchSize },
      { procs: o.pushers, onProgress: (s) => log(`  ${L} acked ${fmtInt(s.acked)} (errors ${s.errors})`) },
    ).done;
    const cpu1 = cpuUs(sys.serverPids);
    const nodeCpu1 = cpuUs(sys.nodePids);
    const ok1 = await okCounter();
    // The server's own count of accepted pushes: the raw client does not decode the trailers it waits for.
    if (ok0 !== undefined && ok1 - ok0 < p.acked) {
      p.errors += p.acked - (ok1 - ok0);
      p.acked = ok1 - ok0;
      p.lastError ||= 'calls answered with a non-OK status (server pushes_total)';
    }
    const secs = (p.t1 - p.t0) / 1e6;
    const nodeUsPerPush = (nodeCpu1 - nodeCpu0) / p.acked;
    const r = {
      system,
      nodes,
      api,
      client,
      pushers: o.pushers,
      channelsPerPusher: channels,
      inflightPerPusher: inflight,
      batchSize: api === 'batch' ? o.batchSize : 1,
      payload: o.payload,
      seconds: +secs.toFixed(2),
      pushes: p.acked,
      callsPerSec: Math.round(p.calls / secs),
      pushesPerSec: Math.round(p.acked / secs),
      pushesPerSecPerNode: Math.round(p.acked / secs / nodes),
      cpuUsPerPush: +((cpu1 - cpu0) / p.acked).toFixed(2),
      // The node process alone (no redis-server): what one core of a node can take when nothing else runs on it.
      nodeCpuUsPerPush: +nodeUsPerPush.toFixed(2),
      nodeCpuPct: +(((nodeCpu1 - nodeCpu0) / (secs * 1e6 * nodes)) * 100).toFixed(0),
      impliedPushesPerSecPerCore: Math.round(1e6 / nodeUsPerPush),
      errors: p.errors,
      lastError: p.lastError || undefined,
    };
    log(`  ${L} ${fmtInt(r.pushesPerSec)} pushes/s, node ${r.nodeCpuUsPerPush} µs/push (busy ${r.nodeCpuPct} % of a core) → ${fmtInt(r.impliedPushesPerSecPerCore)}/s per core`);
    return r;
  } finally {
    await sys.stop();
  }
}

/**
 * --pin: the load generator (this process, and the clients and pushers it forks, which inherit
 * its affinity) on the upper half of the cores, the servers (nodes, redis-server) on the lower
 * half. Returns what was done, for the results.
 */
function pinning() {
  const cores = os.availableParallelism();
  if (!opt.pin) return { mode: 'shared', cores };
  if (cores < 4) {
    log(`--pin: only ${cores} cores, so servers and load generator share them (a shared-core figure)`);
    return { mode: 'shared', cores, asked: true };
  }
  const half = Math.floor(cores / 2);
  const servers = `0-${half - 1}`;
  const load = `${half}-${cores - 1}`;
  execFileSync('taskset', ['-a', '-p', '-c', load, String(process.pid)], { stdio: 'ignore' });
  return { mode: 'pinned', cores, servers, load };
}

function pinServers(pin, sys) {
  if (pin.mode !== 'pinned') return;
  for (const pid of sys.serverPids) execFileSync('taskset', ['-a', '-p', '-c', pin.servers, String(pid)], { stdio: 'ignore' });
}

async function latencyOne(system, nodes, o) {
  const L = label(system, nodes);
  checkPerNode(o.clients, nodes);
  log(`${L} latency: ${o.clients} clients on one topic, steps ${o.rates.join(', ')} deliveries/s, ${o.duration} s each`);
  const pin = pinning();
  const sys = await startSystem(system, nodes);
  pinServers(pin, sys);
  const clients = startClients(sys, o.clients, 'public', { topic: 'bench', perProc, label: L, impl: clientImpl });
  const steps = [];
  try {
    await clients.ready();
    await warmUp(sys, clients, pushApi(system), 'bench');
    let saturatedAt;
    for (const target of o.rates) {
      if (saturatedAt !== undefined) {
        steps.push({ targetDeliveriesPerSec: target, skipped: `not run: the system did not keep up at ${saturatedAt}/s` });
        continue;
      }
      const rate = target / o.clients; // pushes/s
      const pushes = Math.max(1, Math.round(rate * o.duration));
      const got0 = clients.got;
      clients.reset();
      const h0 = system === 'pushwire' ? await scrapeHist(sys, 'pushwire_push_to_write_seconds') : undefined;
      const f0 = system === 'pushwire' ? await scrapeHist(sys, 'pushwire_flush_seconds') : undefined;
      const w0 = system === 'pushwire' ? await scrapeSum(sys, 'pushwire_socket_writes_total') : 0;
      const cpu0 = cpuUs(sys.serverPids);
      const nodeCpu0 = sys.nodePids.map((p) => cpuUs([p]));
      const clientCpu0 = cpuUs(clients.pids);
      let pusher;
      const wait = clients.expect(pushes, {
        stallS: 3,
        progress: () => log(`  ${L} @${fmtInt(target)}/s delivered ${fmtInt(clients.got - got0)}/${fmtInt(pushes * o.clients)}`),
      });
      pusher = runPushers({ api: pushApi(system), targets: targetsOf(sys, pushApi(system)), topic: 'bench', payload: o.payload, rate, inflight: o.inflight, count: pushes });
      const p = await pusher.done;
      // A step may drain for at most its own duration again plus 5 s; later steps are skipped when it did not.
      const end = await wait(() => pusher.running, p.t0 + (2 * o.duration + 5) * 1e6);
      const cpu1 = cpuUs(sys.serverPids);
      const nodeCpu1 = sys.nodePids.map((p) => cpuUs([p]));
      const clientCpu1 = cpuUs(clients.pids);
      const delivered = clients.got - got0;
      const secs = (end.t - p.t0) / 1e6;
      const lat = summarize(await clients.hist());
      const h1 = h0 ? await scrapeHist(sys, 'pushwire_push_to_write_seconds') : undefined;
      const f1 = f0 ? await scrapeHist(sys, 'pushwire_flush_seconds') : undefined;
      const writes = system === 'pushwire' ? (await scrapeSum(sys, 'pushwire_socket_writes_total')) - w0 : 0;
      const pct = (us) => +((us / (secs * 1e6)) * 100).toFixed(0);
      if (!end.complete) saturatedAt = target;
      const step = {
        targetDeliveriesPerSec: target,
        pushesPerSec: +rate.toFixed(2),
        pushes,
        delivered,
        expected: pushes * o.clients,
        complete: end.complete,
        deliveriesPerSec: Math.round(delivered / secs),
        cpuUsPerDelivery: +((cpu1 - cpu0) / delivered).toFixed(3),
        // Deliveries per socket write (pushwire_socket_writes_total): what write coalescing achieved.
        framesPerWrite: writes > 0 ? +(delivered / writes).toFixed(2) : undefined,
        serverCpuPct: +(((cpu1 - cpu0) / (secs * 1e6)) * 100).toFixed(0),
        // Per node (100 = one core): a node near 100 % is the bottleneck of its half.
        nodeCpuPct: nodeCpu1.map((c, i) => pct(c - nodeCpu0[i])),
        // The load generator shares the 2 cores: its CPU tells how much of the latency is its own queueing.
        clientProcs: clients.pids.length,
        clientCpuPct: pct(clientCpu1 - clientCpu0),
        clientCpuUsPerDelivery: +((clientCpu1 - clientCpu0) / delivered).toFixed(3),
        // Server side only: push accepted -> its frames handed to every local socket (bucket upper bounds).
        serverPushToWriteMs: h1 ? histPercentiles(h0, h1) : undefined,
        // One flush = one write per local recipient socket: the server's write loop per push.
        serverFlushMs: f1 && f1.size > 0 ? histPercentiles(f0, f1) : undefined,
        latencyMs: lat,
        pushErrors: p.errors,
      };
      steps.push(step);
      log(`  ${L} @${fmtInt(target)}/s: achieved ${fmtInt(step.deliveriesPerSec)}/s, ${step.cpuUsPerDelivery} µs CPU/delivery, ${step.framesPerWrite ?? '-'} frames/write, p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms${end.complete ? '' : ' (INCOMPLETE)'}`);
      log(
        `  ${L}   CPU: nodes ${step.nodeCpuPct.join(' + ')} %, all servers ${step.serverCpuPct} %, ${step.clientProcs} client processes ${step.clientCpuPct} % (${step.clientCpuUsPerDelivery} µs/delivery)` +
          (step.serverPushToWriteMs ? `; server push→write p50 ≤${step.serverPushToWriteMs.p50} ms, p99 ≤${step.serverPushToWriteMs.p99} ms` : '') +
          (step.serverFlushMs ? `; flush p50 ≤${step.serverFlushMs.p50} ms, p99 ≤${step.serverFlushMs.p99} ms` : ''),
      );
      await sleep(500);
    }
    return { system, nodes, clients: o.clients, payload: o.payload, stepSeconds: o.duration, pinning: pin, steps, serverRssMiB: +(rssSum(sys.serverPids) / 2 ** 20).toFixed(1), clientCloses: clients.closed };
  } finally {
    clients.kill();
    await sys.stop();
  }
}

/** A counter without labels (apart from node), summed over the nodes. */
async function scrapeSum(sys, name) {
  let sum = 0;
  for (const n of sys.nodes) {
    const text = await (await fetch(`${n.http}/metrics`)).text();
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'gm'))) sum += Number(m[1]);
  }
  return sum;
}

/** pushwire_pushes_total{ingress, result="ok"} summed over the nodes. */
async function scrapeCounter(sys, name, ingress) {
  let sum = 0;
  for (const n of sys.nodes) {
    const text = await (await fetch(`${n.http}/metrics`)).text();
    for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+]+)$`, 'gm'))) {
      if (m[1].includes(`ingress="${ingress}"`) && m[1].includes('result="ok"')) sum += Number(m[2]);
    }
  }
  return sum;
}

/** Cumulative bucket counts of a histogram summed over the nodes' /metrics: Map(le -> count). */
async function scrapeHist(sys, name) {
  const sum = new Map();
  for (const n of sys.nodes) {
    const text = await (await fetch(`${n.http}/metrics`)).text();
    for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} ([0-9.e+]+)$`, 'gm'))) {
      sum.set(m[1], (sum.get(m[1]) ?? 0) + Number(m[2]));
    }
  }
  return sum;
}

/** p50/p99 (ms, as bucket upper bounds) of the observations between two scrapes. */
function histPercentiles(h0, h1) {
  const les = [...h1.keys()].sort((a, b) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
  const total = (h1.get('+Inf') ?? 0) - (h0.get('+Inf') ?? 0);
  const at = (q) => {
    if (total === 0) return null;
    for (const le of les) if ((h1.get(le) ?? 0) - (h0.get(le) ?? 0) >= q * total) return le === '+Inf' ? Infinity : Number(le) * 1000;
    return null;
  };
  return { samples: total, p50: at(0.5), p99: at(0.99) };
}

// ---- defaults and dispatch --------------------------------------------------------------------------------------
function defaults(name, sizing) {
  const all = sizing === 'all';
  switch (name) {
    case 'fanout':
      return { nodes: (opt.nodes ?? '1,2').split(',').map(Number), clients: num(opt.clients, 5000), pushes: num(opt.pushes, all ? 400 : 2000), payload: num(opt.payload, 100), inflight: num(opt.inflight, 64) };
    case 'private':
      return { nodes: num(opt.nodes, 2), clients: num(opt.clients, 4000), rate: num(opt.rate, 4000), duration: num(opt.duration, all ? 8 : 10), payload: num(opt.payload, 100), inflight: num(opt.inflight, 256) };
    case 'idle':
      return { nodes: num(opt.nodes, 1), clients: num(opt.clients, 10_000), settle: num(opt.settle, 3) };
    case 'ingress':
      return {
        nodes: num(opt.nodes, 1),
        duration: num(opt.duration, all ? 6 : 8),
        pushers: num(opt.pushers, 2),
        channels: num(opt.channels, 2),
        client: opt.client ?? 'raw',
        inflight: num(opt.inflight, 128),
        batchInflight: 8,
        batchSize: 100,
        payload: num(opt.payload, 100),
      };
    case 'latency':
      return {
        nodes: num(opt.nodes, 2),
        clients: num(opt.clients, 5000),
        rates: (opt.rates ?? '10000,50000,100000,200000').split(',').map(Number),
        duration: num(opt.duration, 8),
        payload: num(opt.payload, 100),
        inflight: num(opt.inflight, 64),
      };
  }
}

async function runScenario(name, sizing) {
  const o = defaults(name, sizing);
  const rows = [];
  const started = new Date();
  const t0 = Date.now();
  const loadStart = os.loadavg().map((x) => +x.toFixed(2));
  const safe = async (f, what) => {
    try {
      rows.push(await f());
    } catch (err) {
      log(`  ${what} FAILED: ${err.stack ?? err}`);
      rows.push({ ...what, error: String(err.message ?? err) });
      killAll();
      await sleep(500);
    }
  };
  for (const system of systemsOpt) {
    if (name === 'fanout') for (const nodes of o.nodes) await safe(() => fanoutOne(system, nodes, o), { system, nodes });
    else if (name === 'private') await safe(() => privateOne(system, o.nodes, o), { system, nodes: o.nodes });
    else if (name === 'idle') await safe(() => idleOne(system, o.nodes, o), { system, nodes: o.nodes });
    else if (name === 'latency') await safe(() => latencyOne(system, o.nodes, o), { system, nodes: o.nodes });
    else if (name === 'ingress') {
      const apis = system === 'pushwire' ? ['grpc', 'batch', 'rest'] : ['http'];
      for (const api of apis) await safe(() => ingressOne(system, o.nodes, api, o), { system, nodes: o.nodes, api });
    }
  }
  const run = {
    scenario: name,
    startedAt: started.toISOString(),
    seconds: Math.round((Date.now() - t0) / 1000),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    options: { ...o, ...(opt.workers && { workers: opt.workers }) },
    machine: machine(),
    loadAvg: { start: loadStart, end: os.loadavg().map((x) => +x.toFixed(2)) },
    results: rows,
  };
  printTable(run);
  const file = `${resultsDir}${name}-${started.toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
  log(`wrote ${file}`);
  if (!opt['no-latest']) {
    const latestFile = `${resultsDir}latest.json`;
    const latest = existsSync(latestFile) ? JSON.parse(readFileSync(latestFile, 'utf8')) : { scenarios: {} };
    latest.updatedAt = new Date().toISOString();
    latest.machine = run.machine;
    latest.scenarios[name] = run;
    writeFileSync(latestFile, `${JSON.stringify(latest, null, 2)}\n`);
  }
  return run;
}

let machineCache;
function machine() {
  if (machineCache) return machineCache;
  let redis = 'unknown';
  try {
    redis = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    /* not installed */
  }
  const cpus = os.cpus();
  let nofile = 'unknown';
  try {
    nofile = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    /* ignore */
  }
  machineCache = {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    totalMemGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis,
    openFilesLimit: nofile,
    loadAvgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  };
  return machineCache;
}

// ---- console table -----------------------------------------------------------------------------------------------
function printTable(run) {
  const cols = {
    fanout: [['system', (r) => r.system], ['nodes', (r) => r.nodes], ['deliv/s', (r) => fmtInt(r.deliveriesPerSec)], ['µs CPU/deliv', (r) => r.cpuUsPerDelivery], ['p50 ms', (r) => r.latencyMs?.p50], ['p99 ms', (r) => r.latencyMs?.p99], ['p99.9 ms', (r) => r.latencyMs?.p999], ['max ms', (r) => r.latencyMs?.max], ['RSS MiB', (r) => r.serverRssMiB], ['push/s', (r) => fmtInt(r.ingressCallsPerSec)], ['delivered', (r) => (r.delivered === undefined ? '' : `${fmtInt(r.delivered)}/${fmtInt(r.expected)}`)]],
    idle: [['system', (r) => r.system], ['conns', (r) => fmtInt(r.connections)], ['RSS before MiB', (r) => r.rssBeforeMiB], ['RSS after MiB', (r) => r.rssAfterMiB], ['RSS KB/conn', (r) => r.rssPerConnKB], ['heap KB/conn', (r) => r.heapPerConnKB]],
    ingress: [['system', (r) => r.system], ['api', (r) => r.api], ['calls/s', (r) => fmtInt(r.callsPerSec)], ['pushes/s', (r) => fmtInt(r.pushesPerSec)], ['µs CPU/push', (r) => r.cpuUsPerPush], ['node µs/push', (r) => r.nodeCpuUsPerPush], ['node busy %', (r) => r.nodeCpuPct], ['per core/s', (r) => fmtInt(r.impliedPushesPerSecPerCore)], ['errors', (r) => r.errors]],
  };
  cols.private = cols.fanout;
  let rows = run.results;
  let c = cols[run.scenario];
  if (run.scenario === 'latency') {
    rows = run.results.flatMap((r) => (r.steps ?? [{ error: r.error }]).map((s) => ({ system: r.system, ...s })));
    c = [['system', (r) => r.system], ['target/s', (r) => fmtInt(r.targetDeliveriesPerSec)], ['achieved/s', (r) => fmtInt(r.deliveriesPerSec)], ['µs CPU/deliv', (r) => r.cpuUsPerDelivery], ['p50 ms', (r) => r.latencyMs?.p50], ['p99 ms', (r) => r.latencyMs?.p99], ['p99.9 ms', (r) => r.latencyMs?.p999], ['max ms', (r) => r.latencyMs?.max], ['complete', (r) => r.complete]];
  }
  const cells = [c.map(([h]) => h), ...rows.map((r) => (r.error ? [r.system, `ERROR: ${r.error}`] : c.map(([, f]) => String(f(r) ?? ''))))];
  const w = c.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  process.stdout.write(`\n${run.scenario} (${run.seconds} s)\n`);
  for (const row of cells) process.stdout.write(`${row.map((v, i) => (v ?? '').padStart(w[i])).join('  ')}\n`);
  process.stdout.write('\n');
}

// ---- main -----------------------------------------------------------------------------------------------------------
if (scenario === 'report') {
  if (opt['rounds-since']) {
    const latestFile = `${resultsDir}latest.json`;
    const latest = JSON.parse(readFileSync(latestFile, 'utf8'));
    latest.rounds = { ...collectRounds(resultsDir, opt['rounds-since']), command: `npm run bench -- report --rounds-since ${opt['rounds-since']}` };
    writeFileSync(latestFile, `${JSON.stringify(latest, null, 2)}\n`);
  }
  generateReport();
} else if (scenario === 'all') {
  const t0 = Date.now();
  const rounds = num(opt.rounds, 1);
  for (let round = 1; round <= rounds; round++) {
    for (const name of ['fanout', 'idle', 'latency', 'private', 'ingress']) {
      log(`\n=== ${name}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''} ===`);
      await runScenario(name, 'all');
    }
  }
  const latestFile = `${resultsDir}latest.json`;
  const latest = JSON.parse(readFileSync(latestFile, 'utf8'));
  if (!opt['no-latest']) {
    const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
    latest.allRun = { command, startedAt: new Date(t0).toISOString(), seconds: Math.round((Date.now() - t0) / 1000) };
    if (rounds > 1) latest.rounds = { ...collectRounds(resultsDir, new Date(t0).toISOString()), command };
    else delete latest.rounds; // a single run replaces the scenarios: older rounds no longer describe them
    writeFileSync(latestFile, `${JSON.stringify(latest, null, 2)}\n`);
    generateReport();
  }
  log(`all: ${Math.round((Date.now() - t0) / 1000)} s`);
} else {
  await runScenario(scenario);
}
killAll();
process.exit(0);
