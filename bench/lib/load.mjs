// Coordinator side of the load generator: forks client processes (bench/load/clients.mjs) and pusher processes
// (bench/load/pusher.mjs) and aggregates what they report.
import { fork } from 'node:child_process';
import { benchDir, decodeHist, log, newHist, nowUs, sleep, track } from './common.mjs';
import { JWT_SECRET } from './systems.mjs';

const CLIENTS = `${benchDir}load/clients.mjs`;
const PUSHER = `${benchDir}load/pusher.mjs`;

/**
 * Opens `total` clients of sys.system spread over ceil(total / perProc) processes (perProc ≤ 4000, far below the
 * 20,000 open files per process); client i connects to node i % nodes.
 */
export function startClients(sys, total, mode, { topic = 'bench', perProc = 2500, concurrency = 100, label = '', impl = 'ws' } = {}) {
  perProc = Math.min(perProc, 4000);
  const nproc = Math.max(1, Math.ceil(total / perProc));
  const kids = [];
  let offset = 0;
  let lastChange = nowUs();
  for (let p = 0; p < nproc; p++) {
    const n = Math.floor(total / nproc) + (p < total % nproc ? 1 : 0);
    const proc = track(fork(CLIENTS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const k = { proc, n, got: 0, subscribed: 0, opened: 0, closed: 0, errors: 0, ready: false, reached: null, hist: null };
    proc.on('message', (m) => {
      if (m.type === 'stat') {
        if (m.got !== k.got) lastChange = nowUs();
        Object.assign(k, { got: m.got, subscribed: m.subscribed, opened: m.opened, closed: m.closed, errors: m.errors });
      } else if (m.type === 'ready') {
        k.ready = true;
        k.subscribed = m.subscribed;
      } else if (m.type === 'reached') {
        k.reached = m.t;
        k.got = Math.max(k.got, m.got);
        lastChange = nowUs();
      } else if (m.type === 'hist') k.hist = m;
    });
    proc.send({ system: sys.system, urls: sys.nodes.map((x) => x.ws), n, offset, mode, topic, jwtSecret: JWT_SECRET, concurrency, impl });
    kids.push(k);
    offset += n;
  }
  const sum = (f) => kids.reduce((a, k) => a + k[f], 0);
  return {
    kids,
    pids: kids.map((k) => k.proc.pid),
    get got() {
      return sum('got');
    },
    get closed() {
      return sum('closed');
    },
    get errors() {
      return sum('errors');
    },
    /** Resolves when every client has subscribed; throws after timeoutS. */
    async ready(timeoutS = 60) {
      const t0 = Date.now();
      let lastLog = 0;
      while (!kids.every((k) => k.ready)) {
        if (Date.now() - t0 > timeoutS * 1000) throw new Error(`${label}: only ${sum('subscribed')}/${total} clients subscribed after ${timeoutS} s (errors ${sum('errors')}, closed ${sum('closed')})`);
        if (Date.now() - lastLog >= 1000) {
          lastLog = Date.now();
          log(`  ${label} connecting: ${sum('subscribed')}/${total} subscribed (errors ${sum('errors')})`);
        }
        await sleep(50);
      }
      log(`  ${label} connected: ${total} clients subscribed in ${((Date.now() - t0) / 1000).toFixed(1)} s (${nproc} client processes)`);
    },
    /**
     * Arms every process to report when `perConn(k)` more deliveries arrived (a function of the process's client
     * count or a number per client). Returns a waiter: await it to get { complete, t } where t is the µs time the
     * last process reached its count, or (on a stall of stallS seconds) the time of the last progress.
     */
    expect(perConn, { stallS = 5, progress } = {}) {
      for (const k of kids) {
        k.reached = null;
        const count = typeof perConn === 'function' ? perConn(k) : k.n * perConn;
        k.proc.send({ cmd: 'expect', count });
      }
      return async (isPushing, deadlineUs = Infinity) => {
        let lastLog = nowUs();
        lastChange = nowUs();
        for (;;) {
          if (kids.every((k) => k.reached !== null)) return { complete: true, t: Math.max(...kids.map((k) => k.reached)) };
          const now = nowUs();
          if (!isPushing?.() && now - lastChange > stallS * 1e6) return { complete: false, t: lastChange };
          if (now > deadlineUs) return { complete: false, t: now, deadline: true };
          if (progress && now - lastLog >= 1e6) {
            lastLog = now;
            progress();
          }
          await sleep(20);
        }
      };
    },
    reset() {
      for (const k of kids) k.proc.send({ cmd: 'reset' });
    },
    /** No further connections are opened (the scale run measures with what connected in its window). */
    stop() {
      for (const k of kids) k.proc.send({ cmd: 'stop' });
    },
    /** Merged latency histogram (µs) of all processes. */
    async hist() {
      for (const k of kids) {
        k.hist = null;
        k.proc.send({ cmd: 'hist' });
      }
      const t0 = Date.now();
      while (!kids.every((k) => k.hist) && Date.now() - t0 < 10_000) await sleep(20);
      const h = newHist();
      for (const k of kids) if (k.hist) h.add(decodeHist(k.hist.hist));
      return h;
    },
    kill() {
      for (const k of kids) k.proc.kill('SIGKILL');
    },
  };
}

/**
 * Runs pushers in `procs` processes; `count` and `rate` are split between them. Resolves with the totals and the
 * window { t0 (first start), t1 (last finish) } in µs.
 */
export function runPushers(cfg, { procs = 1, onProgress } = {}) {
  const kids = [];
  for (let p = 0; p < procs; p++) {
    const proc = track(fork(PUSHER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const k = { proc, sent: 0, acked: 0, errors: 0, done: null };
    const share = (v) => (v ? Math.floor(v / procs) + (p < v % procs ? 1 : 0) : 0);
    proc.on('message', (m) => {
      if (m.type === 'progress') Object.assign(k, { sent: m.sent, acked: m.acked, errors: m.errors });
      else if (m.type === 'done') {
        k.done = m;
        Object.assign(k, { sent: m.sent, acked: m.acked, errors: m.errors });
      }
    });
    proc.send({ ...cfg, count: share(cfg.count), rate: cfg.rate ? cfg.rate / procs : 0, uidOffset: 0 });
    kids.push(k);
  }
  const sum = (f) => kids.reduce((a, k) => a + k[f], 0);
  const state = {
    get running() {
      return !kids.every((k) => k.done);
    },
    get acked() {
      return sum('acked');
    },
    get sent() {
      return sum('sent');
    },
    done: (async () => {
      let lastLog = Date.now();
      while (!kids.every((k) => k.done)) {
        await sleep(20);
        if (onProgress && Date.now() - lastLog >= 1000) {
          lastLog = Date.now();
          onProgress({ sent: sum('sent'), acked: sum('acked'), errors: sum('errors') });
        }
      }
      for (const k of kids) k.proc.kill('SIGKILL');
      const ds = kids.map((k) => k.done);
      return {
        sent: sum('sent'),
        acked: sum('acked'),
        errors: sum('errors'),
        calls: ds.reduce((a, d) => a + d.calls, 0),
        lastError: ds.map((d) => d.lastError).find((e) => e) ?? '',
        t0: Math.min(...ds.map((d) => d.t0)),
        t1: Math.max(...ds.map((d) => d.t1)),
        // Answer times: the worst pusher's percentiles (one pusher in the delivery scenarios).
        ackMs: {
          p50: Math.max(...ds.map((d) => d.ackMs?.p50 ?? 0)),
          p99: Math.max(...ds.map((d) => d.ackMs?.p99 ?? 0)),
          max: Math.max(...ds.map((d) => d.ackMs?.max ?? 0)),
        },
      };
    })(),
  };
  return state;
}
