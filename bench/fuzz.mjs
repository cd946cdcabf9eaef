#!/usr/bin/env node
// The fuzz suites' long mode: runs test/fuzz (the same fast-check properties `npm test` runs a
// few hundred times each) until --inputs inputs in all, against real nodes (ws, rest and grpc
// suites spawn `node dist/src/cli.js serve`; projects reloads an in-process node), and
// reports inputs, time and crashes. Any failing property fails the run with its seed and
// shrunk counterexample (vitest output).
//
//   npm run fuzz -- --inputs 1000000 [--out bench/results/fuzz.json]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const inputs = Number(opt('inputs', '1000000'));
const out = opt('out', undefined);
if (!Number.isSafeInteger(inputs) || inputs < 1) {
  console.error('--inputs must be a positive integer');
  process.exit(2);
}

const report = join(mkdtempSync(join(tmpdir(), 'pushwire-fuzz-')), 'report.jsonl');
const started = Date.now();
const loadBefore = loadavg();
console.log(`fuzz: ${inputs} inputs over test/fuzz (loadavg ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, ${cpus().length} cores)`);

const code = await new Promise((resolve) => {
  const child = spawn(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', 'test/fuzz', '--testTimeout=0', '--hookTimeout=120000', '--maxWorkers=1'],
    { stdio: 'inherit', env: { ...process.env, PUSHWIRE_FUZZ_INPUTS: String(inputs), PUSHWIRE_FUZZ_REPORT: report } },
  );
  child.on('exit', (c) => resolve(c ?? 1));
});

const lines = existsSync(report) ? readFileSync(report, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const total = lines.reduce((n, l) => n + l.inputs, 0);
const seconds = (Date.now() - started) / 1000;
const crashes = lines.filter((l) => l.crashed).length;
const summary = {
  inputs: total,
  requested: inputs,
  seconds: Math.round(seconds),
  inputsPerSecond: Math.round(total / seconds),
  crashes,
  failedSuites: code === 0 ? 0 : 'see vitest output',
  loadavgBefore: loadBefore.map((l) => Number(l.toFixed(2))),
  loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))),
  properties: lines,
};
console.log('\nproperty                                              inputs    seconds');
for (const l of lines) console.log(`${l.property.padEnd(52)} ${String(l.inputs).padStart(9)} ${l.seconds.toFixed(1).padStart(10)}${l.crashed ? '  NODE EXITED' : ''}`);
console.log(`\ntotal ${total} inputs in ${summary.seconds} s (${summary.inputsPerSecond}/s), crashes ${crashes}, vitest exit ${code}`);
console.log(`loadavg before ${summary.loadavgBefore.join(' ')}, after ${summary.loadavgAfter.join(' ')} (shared machine: figures are noisy)`);
if (out) writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
process.exit(code === 0 && crashes === 0 && total >= inputs ? 0 : 1);
