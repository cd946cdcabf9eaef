// Shared helpers of the benchmark harness: clock, payloads, /proc readings, child registry, histograms.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const benchDir = fileURLToPath(new URL('..', import.meta.url));

/** Monotonic clock in µs. CLOCK_MONOTONIC is system-wide, so readings compare across processes on one machine. */
export const nowUs = () => {
  const t = process.hrtime();
  return t[0] * 1e6 + t[1] / 1e3;
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- payloads --------------------------------------------------------------------------------------------------
// Every payload is ASCII text: 8 characters of base64url carrying a 48-bit send timestamp (µs on the monotonic
// clock), then 'x' padding up to the payload size. Text keeps every system on its cheapest path (pushwire text
// frames, Socket.IO string events, ws text frames) with no binary attachments.
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DEC = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) DEC[B64.charCodeAt(i)] = i;

/** Writes the timestamp into the first 8 bytes of buf (6 bits per character, most significant first). */
export function stampPayload(buf, us = nowUs()) {
  let v = Math.floor(us);
  for (let i = 7; i >= 0; i--) {
    buf[i] = B64.charCodeAt(v % 64);
    v = Math.floor(v / 64);
  }
  return buf;
}

export function makePayload(size) {
  return Buffer.alloc(Math.max(8, size), 'x');
}

/** Timestamp of a payload in a Buffer/Uint8Array; NaN when it is not one of ours. */
export function readStampBytes(b) {
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const d = DEC[b[i]];
    if (d === undefined || d < 0) return NaN;
    v = v * 64 + d;
  }
  return v;
}

/** Timestamp of a payload held as a string. */
export function readStampString(s) {
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const d = DEC[s.charCodeAt(i)];
    if (d === undefined || d < 0) return NaN;
    v = v * 64 + d;
  }
  return v;
}

// ---- histograms ------------------------------------------------------------------------------------------------
export const newHist = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
export const encodeHist = (h) => hdr.encodeIntoCompressedBase64(h);
export const decodeHist = (s) => hdr.decodeFromCompressedBase64(s);

/** Latency summary in ms from a histogram of µs. */
export function summarize(h) {
  const ms = (v) => +(v / 1000).toFixed(2);
  if (h.totalCount === 0) return { samples: 0, p50: null, p99: null, p999: null, max: null };
  return {
    samples: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

// ---- /proc -----------------------------------------------------------------------------------------------------
/** user+sys CPU of the processes in µs (clock ticks are 100 Hz). Processes that are gone count 0. */
export function cpuUs(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      sum += (Number(f[11]) + Number(f[12])) * 10_000;
    } catch {
      /* gone */
    }
  }
  return sum;
}

/** Resident set size in bytes (VmRSS) of each pid. */
export function rssBytes(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
  } catch {
    return 0;
  }
}

export const rssSum = (pids) => pids.reduce((s, p) => s + rssBytes(p), 0);

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- child registry: everything we start is killed at the end and on SIGINT/SIGTERM ---------------------------
const children = new Set();
export function track(proc) {
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return proc;
}
export function killAll(signal = 'SIGKILL') {
  for (const c of children) {
    try {
      c.kill(signal);
    } catch {
      /* already gone */
    }
  }
  children.clear();
}
let handlersInstalled = false;
export function installExitHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping every child process\n`);
      killAll();
      process.exit(130);
    });
  }
  process.on('exit', () => killAll());
}

export const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);
export const fmtInt = (n) => (n === null || n === undefined || Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'));

/** Median of a non-empty list of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** A Markdown table, the first column left-aligned and the others right-aligned. */
export function mdTable(head, rows) {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
