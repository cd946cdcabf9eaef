#!/usr/bin/env node
// Profiles one pushwire node under ingress load: a private redis-server, one node started with --cpu-prof, pusher
// processes for --duration s; prints server CPU µs per push (node and redis separately) and the profile's self time
// grouped by owner (ours, generated code, grpc-js, express, ioredis, node internals, GC).
// The profile covers the measured window only (bench/lib/prof-on-signal.mjs, toggled by SIGUSR2).
// Usage: node bench/profile.mjs [--api grpc|rest|batch] [--client h2|grpc-js] [--duration 5] [--pushers 3]
//          [--channels 2] [--inflight 128] [--rate 0] [--node-flags "--flag ..."] [--no-prof] [--top 40] [--incl 're1,re2']
// PUSHWIRE_CLI=<path to cli.js> profiles another build (A/B). Needs `npm run build` first. The .cpuprofile is left in bench/results/prof/ (git-ignored).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { benchDir, cpuUs, installExitHandlers, killAll, log, root, sleep, track } from './lib/common.mjs';
import { runPushers } from './lib/load.mjs';
import { startRedis } from './lib/systems.mjs';

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
const node = track(
  spawn(
    process.execPath,
    [...flags, ...extra, process.env.PUSHWIRE_CLI ?? `${root}dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', ...(redis ? ['--redis', redis.url] : []), '--node-id', 'prof'],
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
await runPushers({ api, client, channels, targets, topic: 'nobody', payload: 100, rate: 0, inflight: 16, count: 2000, batchSize }).done;
if (!opt['no-prof']) node.kill('SIGUSR2');
const nodeCpu0 = cpuUs([node.pid]);
const redisCpu0 = redis ? cpuUs([redis.pid]) : 0;
const p = await runPushers(
  { api, client, channels, targets, topic: 'nobody', payload: 100, rate: Number(opt.rate), inflight: Number(opt.inflight), duration: Number(opt.duration), batchSize },
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
node.kill('SIGTERM');
await new Promise((r) => node.once('exit', r));
redis?.proc.kill('SIGKILL');
if (!opt['no-prof']) {
  summarize(JSON.parse(readFileSync(profFile, 'utf8')), Number(opt.top));
  log(`profile: ${profFile}`);
}
killAll();
process.exit(0);

function owner(url, fn) {
  if (!url) return fn.startsWith('(') ? fn : 'native/other';
  if (url.includes('/dist/src/')) return `ours: ${url.split('/dist/src/')[1]}`;
  if (url.includes('/dist/gen/')) return 'generated (ts-proto)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/').slice(0, 2).join('/')}`;
  return url;
}

function summarize(profile, top) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let total = 0;
  for (const [id, t] of self) if (byId.get(id).callFrame.functionName !== '(idle)') total += t;
  const groups = new Map();
  const fns = new Map();
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    if (functionName === '(idle)') continue;
    const g = owner(url, functionName);
    groups.set(g, (groups.get(g) ?? 0) + t);
    const k = `${functionName || '(anon)'} ${url ? url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, 'dist/') : ''}:${lineNumber + 1}`;
    fns.set(k, (fns.get(k) ?? 0) + t);
  }
  const pct = (t) => `${((t / total) * 100).toFixed(1).padStart(5)} %`;
  log(`\nself time by owner (busy ${(total / 1e6).toFixed(2)} s, idle excluded):`);
  const coarse = new Map();
  for (const [g, t] of groups) {
    const c = g.startsWith('ours') ? 'ours (dist/src)' : g.startsWith('node:') ? 'node internals (js)' : g;
    coarse.set(c, (coarse.get(c) ?? 0) + t);
  }
  for (const [g, t] of [...coarse].sort((a, b) => b[1] - a[1]).slice(0, 20)) log(`  ${pct(t)}  ${g}`);
  log('\nfiner:');
  for (const [g, t] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 30)) log(`  ${pct(t)}  ${g}`);
  log(`\ntop ${top} functions by self time:`);
  for (const [k, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) log(`  ${pct(t)}  ${k}`);
  // Inclusive: a sample counts for a function when it is anywhere on the sample's stack (once per sample).
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, 'dist/')}:${n.callFrame.lineNumber + 1}`;
  const res = (opt.incl || '').split(',').filter(Boolean).map((r) => new RegExp(r));
  if (res.length === 0) return;
  const incl = new Map();
  profile.samples.forEach((id, i) => {
    if (byId.get(id).callFrame.functionName === '(idle)') return;
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const l = label(byId.get(n));
      if (seen.has(l) || !res.some((r) => r.test(l))) continue;
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
  });
  log('\ninclusive time of matching functions:');
  for (const [k, t] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 60)) log(`  ${pct(t)}  ${k}`);
}
