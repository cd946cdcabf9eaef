import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import { expect } from 'vitest';
import { pushClient, pushData } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Shared by the property-based fuzz suites (test/fuzz). `npm test` runs each property a few
 * hundred times; bench/fuzz.mjs (`npm run fuzz -- --inputs N`) sets PUSHWIRE_FUZZ_INPUTS and
 * runs the same suites until N inputs in all, appending one JSON line per property to
 * PUSHWIRE_FUZZ_REPORT. A failing property prints fast-check's seed and shrunk input.
 */

/** Inputs of the whole long run (0: `npm test`, bounded runs). */
const LONG_INPUTS = Number(process.env.PUSHWIRE_FUZZ_INPUTS ?? 0);

export const longMode = LONG_INPUTS > 0;

/**
 * Checks `property`: `runs` runs in `npm test`. In long mode it is checked again and again
 * (fresh seeds) until `tally` has counted `share` of the long run's inputs; the shares of all
 * properties add up to at least 1, cheap inputs taking the large shares. With `seed`, `npm test`
 * checks the same inputs every time (PUSHWIRE_FUZZ_SEED overrides it, e.g. to replay a long-mode
 * failure), and the long run's chunks take seed, seed + 1, … so it can be replayed too.
 */
export async function check<T>(property: fc.IAsyncPropertyWithHooks<T>, tally: Tally, runs: number, share: number, seed?: number): Promise<void> {
  const base = process.env.PUSHWIRE_FUZZ_SEED === undefined ? seed : Number(process.env.PUSHWIRE_FUZZ_SEED);
  if (!longMode) return fc.assert(property, { numRuns: runs, seed: base });
  const target = Math.ceil(LONG_INPUTS * share);
  let done = 0;
  let numRuns = runs;
  for (let chunk = 0; tally.inputs < target; chunk++) {
    await fc.assert(property, { numRuns, endOnFailure: true, seed: base === undefined ? undefined : base + chunk });
    done += numRuns;
    // The next chunk: about what is left, at the inputs per run seen so far.
    numRuns = Math.max(1, Math.ceil((target - tally.inputs) / Math.max(1, tally.inputs / done)));
  }
}

/** Inputs one run sends together: a few in `npm test`, batches in long mode (amortises each run). */
export const batch = (small: number, long: number): { minLength: number; maxLength: number } =>
  longMode ? { minLength: long / 2, maxLength: long } : { minLength: 1, maxLength: small };

/** Counts inputs per property and records them for the long-mode report. */
export class Tally {
  inputs = 0;
  private readonly started = performance.now();

  constructor(readonly property: string) {}

  add(n = 1): void {
    this.inputs += n;
  }

  report(node?: NodeProcess): void {
    const file = process.env.PUSHWIRE_FUZZ_REPORT;
    if (file === undefined) return;
    const line = { property: this.property, inputs: this.inputs, seconds: (performance.now() - this.started) / 1000, crashed: node ? node.proc.exitCode !== null || node.proc.signalCode !== null : false };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }
}

/** Deeply nested JSON text mixing arrays and objects, closed properly. */
export const deepJson = (maxDepth: number): fc.Arbitrary<string> =>
  fc.tuple(fc.integer({ min: 1, max: maxDepth }), fc.integer()).map(([depth, seed]) => deepJsonOf(depth, seed));

/** `depth` levels of arrays and objects (picked by `seed`) around `1`. */
export function deepJsonOf(depth: number, seed: number): string {
  let open = '';
  let close = '';
  let x = seed;
  for (let i = 0; i < depth; i++) {
    x = (x * 1103515245 + 12345) | 0;
    if (x & 1) {
      open += '[';
      close = `]${close}`;
    } else {
      open += '{"k":';
      close = `}${close}`;
    }
  }
  return `${open}1${close}`;
}

/** The node process is alive and still serves a valid push end to end (subscribe, gRPC push, delivery). */
export async function expectServes(node: NodeProcess): Promise<void> {
  expect(node.proc.exitCode, node.stderr).toBeNull();
  expect(node.proc.signalCode).toBeNull();
  const c = await TestClient.connect(node.wsUrl);
  const grpc = pushClient(node.grpcAddress);
  try {
    const topic = unique('fuzz-alive');
    expect(await c.subscribe(topic)).toMatchObject({ code: 20001 });
    const text = unique('fuzz-push');
    await pushData(grpc, { topic, data: Buffer.from(text) });
    await c.next((f) => f.text === text);
    expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
  } finally {
    grpc.close();
    await c.close();
  }
}
