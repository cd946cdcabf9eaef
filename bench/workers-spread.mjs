// How `serve --workers N` spreads connections: `node bench/workers-spread.mjs [--workers N] [--clients C] [--redis URL]`.
// Starts the machine through the CLI, opens C WebSocket connections (one at a time), and prints the
// connections per worker from /metrics (pushwire_connections{worker}) with the load average.
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
};
const workers = arg('workers', '2');
const clients = Number(arg('clients', 1000));
const redis = arg('redis', undefined);
const cli = new URL('../dist/src/cli.js', import.meta.url).pathname;

const node = spawn(process.execPath, [cli, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', '--workers', workers, '--ping-timeout', '600s', ...(redis ? ['--redis', redis] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
const ports = await new Promise((resolve) => {
  createInterface({ input: node.stdout }).on('line', (line) => {
    try {
      const l = JSON.parse(line);
      if (l.msg === 'pushwire workers listening') resolve({ ws: l.wsPort, http: l.httpPort });
    } catch {}
  });
});
const sockets = [];
for (let i = 0; i < clients; i++) {
  const ws = new WebSocket(`ws://127.0.0.1:${ports.ws}/ws`);
  await new Promise((resolve, reject) => {
    ws.once('message', resolve);
    ws.once('error', reject);
  });
  sockets.push(ws);
}
await new Promise((r) => setTimeout(r, 500));
const text = await (await fetch(`http://127.0.0.1:${ports.http}/metrics`)).text();
const per = {};
for (const m of text.matchAll(/^pushwire_connections\{[^}]*worker="(\d+)"[^}]*\} (\d+)$/gm)) per[m[1]] = Number(m[2]);
console.log(JSON.stringify({ date: new Date().toISOString(), workers: Number(workers), clients, redis: Boolean(redis), perWorker: per, loadavg: loadavg().map((l) => l.toFixed(2)).join(' ') }));
for (const ws of sockets) ws.terminate();
node.kill('SIGTERM');
