#!/usr/bin/env node
// Rough fan-out figure for one node: N WebSocket clients on one topic (in a child process),
// M gRPC pushes as fast as accepted, deliveries/s and server CPU µs per delivery.
// Usage: node bench/quick-fanout.mjs [clients=1000] [pushes=2000] [payloadBytes=100] [nodes=1]
// nodes=2 starts a private redis-server and two nodes; clients split across them, pushes go to the first.
// Needs `npm run build` first. The full harness (baselines, latency, plots) is issue 3's.
import { fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { WebSocket } from 'ws';

const root = fileURLToPath(new URL('..', import.meta.url));
const [clients = 1000, pushes = 2000, size = 100, nodes = 1] = process.argv.slice(2).map(Number);

if (process.argv[2] === '--clients-child') {
  // child: open clients, subscribe, count deliveries
  const [url, n] = [process.argv[3], Number(process.argv[4])];
  let got = 0;
  let open = 0;
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url);
    ws.on('message', (d) => {
      if (d[0] === 0x7b /* { */ && d.includes('"code":2000')) {
        if (d.includes('"code":20001')) if (++open === n) process.send({ ready: true });
        return;
      }
      got++;
    });
    ws.on('open', () => ws.send('{"code":1,"topic":"bench"}'));
  }
  setInterval(() => process.send({ got }), 100);
} else {
  const { PushServiceClient } = await import(new URL('../dist/gen/pushwire/v1/push.js', import.meta.url));
  const extra = [];
  let redis;
  if (nodes > 1) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    extra.push('--redis', `redis://127.0.0.1:${port}`);
  }
  const startNode = async () => {
    const proc = spawn(process.execPath, [`${root}dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ports = await new Promise((resolve) =>
      createInterface({ input: proc.stdout }).on('line', (l) => {
        const j = JSON.parse(l);
        if (j.msg === 'pushwire node listening') resolve(j);
      }),
    );
    return { proc, ports };
  };
  const servers = [];
  for (let i = 0; i < nodes; i++) servers.push(await startNode());
  const ports = servers[0].ports;
  const perChild = 2000; // stay well below the per-process open-file limit
  const children = [];
  const counts = [];
  let ready = 0;
  const allReady = new Promise((resolve) => {
    for (let c = 0; c * perChild < clients; c++) {
      const n = Math.min(perChild, clients - c * perChild);
      const wsPort = servers[c % servers.length].ports.wsPort;
      const child = fork(fileURLToPath(import.meta.url), ['--clients-child', `ws://127.0.0.1:${wsPort}/ws`, String(n)]);
      const idx = children.push(child) - 1;
      counts[idx] = 0;
      child.on('message', (m) => {
        if (m.ready && ++ready === children.length) resolve();
        if (m.got !== undefined) counts[idx] = m.got;
      });
    }
  });
  await allReady;
  // user+sys of every server process (nodes and redis), in µs (clock ticks are 100 Hz)
  const pids = [...servers.map((s) => s.proc.pid), ...(redis ? [redis.pid] : [])];
  const cpu = () =>
    pids.reduce((sum, pid) => {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return sum + (Number(f[11]) + Number(f[12])) * 10_000;
    }, 0);
  const client = new PushServiceClient(`127.0.0.1:${ports.grpcPort}`, credentials.createInsecure());
  const data = Buffer.alloc(size, 'x');
  const expected = clients * pushes;
  const cpu0 = cpu();
  const t0 = process.hrtime.bigint();
  let inflight = 0;
  let sent = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (inflight < 64 && sent < pushes) {
        inflight++;
        sent++;
        client.pushData({ uid: '', topic: 'bench', data }, (err) => {
          if (err) throw err;
          inflight--;
          pump();
        });
      }
      if (sent === pushes && inflight === 0) resolve();
    };
    pump();
  });
  const total = () => counts.reduce((a, b) => a + b, 0);
  const deadline = Date.now() + 60_000;
  while (total() < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuUs = cpu() - cpu0;
  const got = total();
  const rss = servers.reduce((sum, s) => sum + Number(readFileSync(`/proc/${s.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]), 0);
  process.stdout.write(
    JSON.stringify({ nodes, clients, pushes, payloadBytes: size, delivered: got, expected, seconds: +secs.toFixed(2), deliveriesPerSec: Math.round(got / secs), serverCpuUsPerDelivery: +(cpuUs / got).toFixed(2), serverRssMiB: +(rss / 1024).toFixed(1) }) + '\n',
  );
  client.close();
  for (const c of children) c.kill();
  for (const s of servers) s.proc.kill('SIGTERM');
  redis?.kill();
  process.exit(0);
}
