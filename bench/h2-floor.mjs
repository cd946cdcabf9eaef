#!/usr/bin/env node
// CPU per unary call of a bare node:http2 server (bench/baselines/h2-floor-server.mjs) under the same raw-frame
// load as `bench/profile.mjs --api grpc --client raw`: what any node:http2 PushData costs before a push is made.
// Usage: node bench/h2-floor.mjs [--pushers 1] [--channels 2] [--inflight 256] [--duration 4]
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { cpuUs, installExitHandlers, killAll, track } from './lib/common.mjs';
import { runPushers } from './lib/load.mjs';

const { values: opt } = parseArgs({
  options: {
    pushers: { type: 'string', default: '1' },
    channels: { type: 'string', default: '2' },
    inflight: { type: 'string', default: '256' },
    duration: { type: 'string', default: '4' },
  },
});
installExitHandlers();
const server = track(spawn(process.execPath, [new URL('./baselines/h2-floor-server.mjs', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] }));
const port = await new Promise((resolve) => createInterface({ input: server.stdout }).once('line', (l) => resolve(JSON.parse(l).port)));
const load = { api: 'grpc', client: 'raw', channels: Number(opt.channels), targets: [`127.0.0.1:${port}`], topic: 'nobody', payload: 100, rate: 0 };
await runPushers({ ...load, inflight: 16, count: 2000 }).done;
const cpu0 = cpuUs([server.pid]);
const p = await runPushers({ ...load, inflight: Number(opt.inflight), duration: Number(opt.duration) }, { procs: Number(opt.pushers) }).done;
const used = cpuUs([server.pid]) - cpu0;
const secs = (p.t1 - p.t0) / 1e6;
console.log(JSON.stringify({
  date: new Date().toISOString(), server: 'bare node:http2', calls: p.acked, errors: p.errors, callsPerSecond: Math.round(p.acked / secs),
  serverCpuUsPerCall: +(used / p.acked).toFixed(1), serverBusy: +((used / 1e6 / secs) * 100).toFixed(0), loadavg: loadavg().map((l) => l.toFixed(2)).join(' '),
}));
killAll();
process.exit(0);
