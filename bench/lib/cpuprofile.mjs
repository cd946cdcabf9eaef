// Summarizes a V8 .cpuprofile: self time grouped by owner (ours = dist/src, generated code, each package, node
// internals, GC), the top functions, and inclusive time of functions matching some regexes.
// CLI: node bench/lib/cpuprofile.mjs <file.cpuprofile> [top] [incl-regex,incl-regex]
import { readFileSync } from 'node:fs';
import { log } from './common.mjs';

function owner(url, fn) {
  if (!url) return fn.startsWith('(') ? fn : 'native/other';
  if (url.includes('/dist/src/')) return `ours: ${url.split('/dist/src/')[1]}`;
  if (url.includes('/dist/gen/')) return 'generated (ts-proto)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/').slice(0, 2).join('/')}`;
  return url;
}

export function summarize(profile, { top = 40, incl: inclRes = "" } = {}) {
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
  const res = (inclRes || "").split(",").filter(Boolean).map((r) => new RegExp(r));
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

if (import.meta.url === `file://${process.argv[1]}`) {
  summarize(JSON.parse(readFileSync(process.argv[2], 'utf8')), { top: Number(process.argv[3] ?? 40), incl: process.argv[4] ?? '' });
}
