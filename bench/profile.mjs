#!/usr/bin/env node
// Profiles one pushwire node under ingress load: a private redis-server, one node started with --cpu-prof, pusher
// processes for --duration s; prints server CPU µs per push (node and redis separately) and the profile's self time
// grouped by owner (ours, generated code, grpc-js, express, ioredis, node internals, GC).
// The profile covers the measured window only (bench/lib/prof-on-signal.mjs, toggled by SIGUSR2).
// Usage: node bench/profile.mjs [--api grpc|rest|batch] [--client h2|grpc-js] [--duration 5] [--pushers 3]
//          [--channels 2] [--inflight 128] [--rate 0] [--node-flags "--flag ..."] [--no-prof] [--top 40] [--incl 're1,re2']
//          [--deadline 30S] (every gRPC call carries grpc-timeout) [--serve-args="--grpc-fast-path false"] (more flags for `pushwire serve`)
// PUSHWIRE_CLI=<path to cli.js> profiles another build (A/B). Needs `npm run build` first. The .cpuprofile is left in bench/results/prof/ (git-ignored).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { benchDir, cpuUs, installExitHandlers, killAll, log, root, sleep, track } from './lib/common.mjs';
import { runPushers } from './lib/load.mjs';
import { startRedis } from './lib/systems.mjs';
import { summarize } from './lib/cpuprofile.mjs';

const { values: opt } = parseArgs({
  options: {
    api: { type: 'string', default: 'grpc' },
    duration: { type: 'string', default: '5' },
    pushers: { type: 'string', default: '3' },
    channels: { type: 'string', default: '2' },
    client: { type: 'string', default: 'h2' },
    inflight: { type: 'string', default: '128' },
    rate: { type: 'string', default: '0' }, // pushes/s over all pushers; 0 = as fast as accepted
    'batch-size': { type: 'string', default: '100' },
    'node-flags': { type: 'string', default: '' },
    'serve-args': { type: 'string', default: '' },
    deadline: { type: 'string', default: '' },
    'no-prof': { type: 'boolean', default: false },
    'no-redis': { type: 'boolean', default: false },
    top: { type: 'string', default: '40' },
    // inclusive time of every function whose "name file" matches one of these comma-separated regexes
    incl: { type: 'string', default: '' },
  },
});
installExitHandlers();

const dir = `${benchDir}results/prof/`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

const redis = opt['no-redis'] ? undefined : await startRedis();
const profFile = `${dir}window.cpuprofile`;
const flags = opt['no-prof'] ? [] : ['--import', new URL('./lib/prof-on-signal.mjs', import.meta.url).href];
const extra = opt['node-flags'].split(' ').filter(Boolean);
const serveArgs = opt['serve-args'].split(' ').filter(Boolean);
const deadline = opt.deadline;
const node = track(
  spawn(
    process.execPath,
    [...flags, ...extra, process.env.PUSHWIRE_CLI ?? `${root}dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', ...(redis ? ['--redis', redis.url] : []), '--node-id', 'prof', ...serveArgs],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PUSHWIRE_PROF_FILE: profFile } },
  ),
);
const info = await new Promise((resolve, reject) => {
  node.on('exit', (c) => reject(new Error(`node exited ${c}`)));
  createInterface({ input: node.stdout }).on('line', (l) => {
    try {
      const j = JSON.parse(l);
      if (j.msg === 'pushwire node listening') resolve(j);
    } catch {
      /* not JSON */
    }
  });
});
const grpcPort = info.grpcPort;
const httpPort = info.httpPort;
const targets = opt.api === 'rest' ? [`http://127.0.0.1:${httpPort}`] : [`127.0.0.1:${grpcPort}`];
const api = opt.api;
const batchSize = Number(opt['batch-size']);
const client = opt.client;
const channels = Number(opt.channels);
await runPushers({ api, client, channels, targets, topic: 'nobody', payload: 100, rate: 0, inflight: 16, count: 2000, batchSize, deadline }).done;
if (!opt['no-prof']) node.kill('SIGUSR2');
const nodeCpu0 = cpuUs([node.pid]);
const redisCpu0 = redis ? cpuUs([redis.pid]) : 0;
const p = await runPushers(
  { api, client, channels, targets, topic: 'nobody', payload: 100, rate: Number(opt.rate), inflight: Number(opt.inflight), duration: Number(opt.duration), batchSize, deadline },
  { procs: Number(opt.pushers) },
).done;
const nodeCpu = cpuUs([node.pid]) - nodeCpu0;
const redisCpu = redis ? cpuUs([redis.pid]) - redisCpu0 : 0;
if (!opt['no-prof']) {
  node.kill('SIGUSR2');
  await sleep(1500);
}
const secs = (p.t1 - p.t0) / 1e6;
const perPush = (x) => (x / p.acked).toFixed(1);
log(
  `${api} (${client}, ${opt.pushers} pushers × ${channels} channels × ${opt.inflight} in flight): ${p.acked} pushes (${p.calls} calls) in ${secs.toFixed(2)} s = ${Math.round(p.acked / secs)}/s, errors ${p.errors}${p.lastError ? ` (${p.lastError})` : ''}\n` +
    `  server CPU per push: node ${perPush(nodeCpu)} µs + redis ${perPush(redisCpu)} µs = ${perPush(nodeCpu + redisCpu)} µs` +
    ` (node busy ${((nodeCpu / (secs * 1e6)) * 100).toFixed(0)} % of a core)`,
);
// The server's own count of pushes by result: the raw client does not decode trailers, so this is the check.
const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
const sample = (re) => Number(re.exec(text)?.[1] ?? NaN);
log(
  `  server after the run: pushwire_grpc_fast_path_calls_total ${sample(/^pushwire_grpc_fast_path_calls_total\{method="PushData"[^}]*\} (\d+)/m)} (PushData), ` +
    `timers ${/^nodejs_active_resources\{[^}]*type="Timeout"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0} (none listed = 0), heap used ${(sample(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)/m) / 2 ** 20).toFixed(1)} MiB`,
);
log(`  server pushwire_pushes_total: ${[...text.matchAll(/^pushwire_pushes_total\{([^}]*)\} (\d+)/gm)].map((m) => `${m[1].replace(/,?node="[^"]*"/, '')} ${m[2]}`).join('; ')}`);
node.kill('SIGTERM');
await new Promise((r) => node.once('exit', r));
redis?.proc.kill('SIGKILL');
if (!opt['no-prof']) {
  summarize(JSON.parse(readFileSync(profFile, 'utf8')), { top: Number(opt.top), incl: opt.incl });
  log(`profile: ${profFile}`);
}
killAll();
process.exit(0);

