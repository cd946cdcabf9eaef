// Median and range over repeated runs of the same scenarios (`npm run bench -- all --rounds N`, or
// `npm run bench -- report --rounds-since <ISO time>` to gather the timestamped result files of runs already made).
// One run of a scenario on a shared 2-core box can be off by 2× either way; a figure worth quoting is the median of
// several, with its spread and the load the box had when each run was made.
import { readdirSync, readFileSync } from 'node:fs';
import { mdTable, median } from './lib/common.mjs';

const SCENARIOS = ['fanout', 'idle', 'latency', 'private', 'ingress'];

/** The runs of `all` in `dir` (`<scenario>-<timestamp>.json`) started at or after `since`, oldest first. */
export function collectRounds(dir, since) {
  const t = Date.parse(since);
  if (Number.isNaN(t)) throw new Error(`--rounds-since: not a date: ${since}`);
  const runs = {};
  for (const name of readdirSync(dir).sort()) {
    const m = /^([a-z]+)-\d{4}-.*\.json$/.exec(name);
    if (!m || !SCENARIOS.includes(m[1])) continue;
    const run = JSON.parse(readFileSync(`${dir}${name}`, 'utf8'));
    // Only scenarios run by `all` with its defaults: a hand-run scenario with other options is not a round.
    if (Date.parse(run.startedAt) < t || !/ -- all\b/.test(run.command ?? '') || run.options?.workers) continue;
    (runs[run.scenario] ??= []).push(run);
  }
  return { since: new Date(t).toISOString(), runs };
}

/** Median [min–max] of the numbers present; '—' when no run had the figure. */
export function spread(values, digits = 2) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return { text: '—', n: 0 };
  const fmt = (v) => (digits === 0 ? Math.round(v).toLocaleString('en-US') : v.toFixed(digits));
  const med = median(xs);
  const text = xs.length === 1 ? fmt(med) : `${fmt(med)} [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`;
  return { text, median: med, n: xs.length };
}

const ok = (run, pred) => run.results.find((r) => !r.error && pred(r));
// Runs made before the harness recorded each scenario's own load carry the one read when their `all` process first
// described the machine (at the end of its first scenario): marked with *.
const loadOf = (run) => (run.loadAvg ? run.loadAvg.start.map((x) => x.toFixed(1)).join(' ') : run.machine?.loadAvgAtStart ? `${run.machine.loadAvgAtStart.map((x) => x.toFixed(1)).join(' ')} *` : '');
const table = mdTable;

/** The figure `get` of the result matching `pred`, in every run of the scenario. */
const across = (runs, pred, get) => (runs ?? []).map((run) => {
  const r = ok(run, pred);
  return r ? get(r) : undefined;
});

/** Markdown: one table per scenario of median [min–max] over the rounds, then the runs with their date and load. */
export function roundsSection(rounds) {
  const R = rounds?.runs ?? {};
  const counts = SCENARIOS.map((s) => R[s]?.length ?? 0).filter((n) => n > 0);
  if (counts.length === 0) return [];
  const out = ['## Reproducibility: median [min–max] over repeated runs', ''];
  out.push(
    `Every scenario of \`npm run bench -- all\` run ${Math.min(...counts) === Math.max(...counts) ? counts[0] : `${Math.min(...counts)}–${Math.max(...counts)}`} times since ${rounds.since} (${rounds.command ?? 'runs gathered with `report --rounds-since`'}).`,
    'Each cell is the median of the runs with their range; the runs, their start time and the load average of the box',
    'when each began are listed below. The per-scenario sections further down show the last run only.',
    '',
  );
  const systems = ['pushwire', 'socketio', 'ws'];
  if (R.fanout) {
    const rows = [];
    for (const nodes of [1, 2]) {
      for (const sys of systems) {
        const p = (r) => r.system === sys && r.nodes === nodes;
        const cpu = spread(across(R.fanout, p, (r) => r.cpuUsPerDelivery), 3);
        if (!cpu.n) continue;
        rows.push([sys, nodes, cpu.text, spread(across(R.fanout, p, (r) => r.deliveriesPerSec), 0).text, spread(across(R.fanout, p, (r) => r.latencyMs?.p99), 0).text, cpu.n]);
      }
    }
    out.push('**fanout** (burst):', '', table(['system', 'nodes', 'server CPU µs/delivery', 'deliveries/s', 'p99 ms', 'runs'], rows), '');
  }
  if (R.latency) {
    const rates = R.latency[0].options.rates;
    const rows = [];
    for (const sys of systems) {
      for (const target of rates) {
        const step = (run) => ok(run, (r) => r.system === sys)?.steps?.find((s) => s.targetDeliveriesPerSec === target && !s.skipped);
        const steps = R.latency.map(step);
        const p99 = spread(steps.map((s) => s?.latencyMs?.p99), 1);
        if (!p99.n) continue;
        rows.push([sys, target.toLocaleString('en-US'), spread(steps.map((s) => s?.deliveriesPerSec), 0).text, spread(steps.map((s) => s?.latencyMs?.p50), 1).text, `**${p99.text}**`, spread(steps.map((s) => s?.cpuUsPerDelivery), 2).text, p99.n]);
      }
    }
    out.push(`**latency** (${R.latency[0].options.clients.toLocaleString('en-US')} clients, ${R.latency[0].options.nodes} nodes via Redis, \`ws\` load generator):`, '', table(['system', 'target deliveries/s', 'achieved/s', 'p50 ms', 'p99 ms', 'server CPU µs/delivery', 'runs'], rows), '');
  }
  if (R.idle) {
    const rows = systems.map((sys) => {
      const p = (r) => r.system === sys;
      const rss = spread(across(R.idle, p, (r) => r.rssPerConnKB), 2);
      return rss.n ? [sys, `**${rss.text}**`, spread(across(R.idle, p, (r) => r.heapPerConnKB), 2).text, rss.n] : undefined;
    }).filter(Boolean);
    out.push('**idle**:', '', table(['system', 'RSS KB/conn', 'heap KB/conn', 'runs'], rows), '');
  }
  if (R.private) {
    const rows = systems.map((sys) => {
      const p = (r) => r.system === sys;
      const cpu = spread(across(R.private, p, (r) => r.cpuUsPerDelivery), 1);
      return cpu.n ? [sys, cpu.text, spread(across(R.private, p, (r) => r.latencyMs?.p50), 1).text, spread(across(R.private, p, (r) => r.latencyMs?.p99), 1).text, cpu.n] : undefined;
    }).filter(Boolean);
    out.push('**private**:', '', table(['system', 'server CPU µs/delivery', 'p50 ms', 'p99 ms', 'runs'], rows), '');
  }
  if (R.ingress) {
    const apis = [['pushwire', 'grpc', 'gRPC PushData'], ['pushwire', 'batch', 'gRPC PushDataBatch'], ['pushwire', 'rest', 'REST /v1/pushData'], ['socketio', 'http', 'HTTP POST /push'], ['ws', 'http', 'HTTP POST /push']];
    const rows = apis.map(([sys, api, label]) => {
      const p = (r) => r.system === sys && r.api === api;
      const rate = spread(across(R.ingress, p, (r) => r.pushesPerSec), 0);
      return rate.n ? [sys, label, `**${rate.text}**`, spread(across(R.ingress, p, (r) => r.nodeCpuUsPerPush), 1).text, spread(across(R.ingress, p, (r) => r.cpuUsPerPush), 1).text, rate.n] : undefined;
    }).filter(Boolean);
    out.push('**ingress** (one node, Redis bus):', '', table(['system', 'API', 'pushes/s', 'node CPU µs/push', 'server CPU µs/push', 'runs'], rows), '');
  }
  const runRows = [];
  for (const s of SCENARIOS) for (const run of R[s] ?? []) runRows.push([s, run.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'), `${run.seconds} s`, loadOf(run) || '—']);
  out.push('Runs:', '', table(['scenario', 'started', 'took', 'load average at start (1, 5, 15 min)'], runRows), '');
  if (runRows.some((r) => r[3].endsWith('*'))) out.push('\\* read at the end of the first scenario of that `all` run, not at this scenario\'s start.', '');
  return out;
}

/** The median of a figure over the rounds, for the targets table (undefined without rounds). */
export function roundsMedian(rounds, scenario, pred, get, digits = 3) {
  const runs = rounds?.runs?.[scenario];
  if (!runs || runs.length < 2) return undefined;
  const s = spread(across(runs, pred, get), digits);
  return s.n ? s : undefined;
}
