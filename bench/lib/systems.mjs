// Starts the systems under test, each in its own processes: redis-server, pushwire nodes (the real CLI),
// and the two baselines (bench/baselines/*.mjs). Every process is registered for kill at the end.
import { execFileSync, fork, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { benchDir, freePort, root, sleep, track, rssBytes } from './common.mjs';

export const JWT_SECRET = 'pushwire-bench-secret';

export async function startRedis() {
  const port = await freePort();
  const proc = track(
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('redis-server did not start within 10 s')), 10_000);
    proc.on('error', reject);
    createInterface({ input: proc.stdout }).on('line', (l) => {
      if (l.includes('Ready to accept connections')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return { proc, pid: proc.pid, url: `redis://127.0.0.1:${port}`, port };
}

/** `serve --workers N` for every pushwire node (run.mjs --workers); one process per node when unset or 1. */
const workers = () => process.env.PUSHWIRE_BENCH_WORKERS ?? '1';

/** The worker processes of a `--workers` node (its children), so their CPU and RSS are counted with it. */
function childPids(pid) {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

export async function startPushwireNode(extra) {
  const ready = workers() === '1' ? 'pushwire node listening' : 'pushwire workers listening';
  // --expose-gc plus a preload that runs gc() on SIGUSR2, so `idle` can collect before measuring (harness side only).
  const proc = track(
    spawn(
      process.execPath,
      [
        '--expose-gc',
        '--import',
        new URL('./gc-on-signal.mjs', import.meta.url).href,
        // PUSHWIRE_BENCH_PROF_DIR=<dir>: each node writes a .cpuprofile there when it stops (stop() then ends it with SIGTERM).
        ...(process.env.PUSHWIRE_BENCH_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.PUSHWIRE_BENCH_PROF_DIR] : []),
        process.env.PUSHWIRE_CLI ?? `${root}dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', '--ping-timeout', '600s', '--jwt-secret', JWT_SECRET, '--workers', workers(), ...extra],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  const info = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('pushwire node did not start within 20 s')), 20_000);
    proc.on('exit', (code) => reject(new Error(`pushwire node exited with ${code}`)));
    createInterface({ input: proc.stdout }).on('line', (l) => {
      try {
        const j = JSON.parse(l);
        if (j.msg === ready) {
          clearTimeout(t);
          resolve(j);
        } else if (j.level >= 40) process.stderr.write(`[pushwire ${proc.pid}] ${l}\n`);
      } catch {
        /* not JSON */
      }
    });
  });
  return {
    proc,
    pid: proc.pid,
    ws: `ws://127.0.0.1:${info.wsPort}/ws`,
    grpc: `127.0.0.1:${info.grpcPort}`,
    http: `http://127.0.0.1:${info.httpPort}`,
  };
}

async function startBaselineNode(kind, redisUrl) {
  const port = await freePort();
  const script = `${benchDir}baselines/${kind === 'socketio' ? 'socketio-server.mjs' : 'ws-server.mjs'}`;
  const args = ['--port', String(port), ...(redisUrl ? ['--redis', redisUrl] : [])];
  const proc = track(fork(script, args, { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} baseline did not start within 20 s`)), 20_000);
    proc.on('exit', (code) => reject(new Error(`${kind} baseline exited with ${code}`)));
    proc.on('message', (m) => {
      if (m?.listening) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const base = `http://127.0.0.1:${port}`;
  return { proc, pid: proc.pid, ws: kind === 'socketio' ? base : `ws://127.0.0.1:${port}/`, http: base, push: `${base}/push` };
}

/**
 * Starts `system` (pushwire | socketio | ws) with `nodes` nodes; two nodes (or redis: true) use a private
 * redis-server. Returns { system, nodes: [...], redis, serverPids (nodes + redis), nodePids, stop() }.
 */
export async function startSystem(system, nodes, { redis = nodes > 1 } = {}) {
  const r = redis ? await startRedis() : undefined;
  const list = [];
  for (let i = 0; i < nodes; i++) {
    if (system === 'pushwire') list.push(await startPushwireNode(r ? ['--redis', r.url, '--node-id', `bench${i}`] : ['--node-id', `bench${i}`]));
    else list.push(await startBaselineNode(system, r?.url));
  }
  await sleep(300);
  const nodePids = list.flatMap((n) => [n.pid, ...childPids(n.pid)]);
  return {
    system,
    nodes: list,
    redis: r,
    nodePids,
    serverPids: [...nodePids, ...(r ? [r.pid] : [])],
    async stop() {
      if (process.env.PUSHWIRE_BENCH_PROF_DIR && system === 'pushwire') {
        await Promise.all(list.map((n) => new Promise((r) => (n.proc.once('exit', r), n.proc.kill('SIGTERM')))));
      }
      for (const n of list) n.proc.kill('SIGKILL');
      // A --workers node's workers too (they would exit with their primary anyway).
      for (const pid of nodePids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      r?.proc.kill('SIGKILL');
      await sleep(200);
    },
  };
}

/** Forces a GC in every node of the system and returns { rss, heapUsed } sums (bytes) of the node processes. */
export async function gcAndMeasure(sys) {
  let heap = 0;
  for (const n of sys.nodes) {
    if (sys.system === 'pushwire') {
      n.proc.kill('SIGUSR2');
      await sleep(700);
      const text = await (await fetch(`${n.http}/metrics`)).text();
      const m = text.match(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})?\s+([0-9.e+]+)/m);
      heap += m ? Number(m[1]) : NaN;
    } else {
      const s = await (await fetch(`${n.http}/stats`)).json();
      heap += s.heapUsed;
    }
  }
  await sleep(300);
  const rss = sys.nodePids.reduce((a, p) => a + rssBytes(p), 0);
  return { rss, heapUsed: heap };
}
