import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative imports (type-only ones included: a cycle of types is still a tangle) of each file under src/. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)]
      .map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')))
      .filter((d) => d.startsWith(SRC));
    g.set(file, deps);
  }
  return g;
}

function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d].map((f) => relative(SRC, f)));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of g.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('src/ import graph', () => {
  it('reads every source file and its imports', () => {
    const g = graph();
    expect(g.size).toBeGreaterThan(50);
    expect(g.get(join(SRC, 'ingress/http/app.ts'))).toContain(join(SRC, 'ingress/http/route-helpers.ts'));
  });

  it('has no import cycles (modules import down, never back)', () => {
    expect(cycles(graph())).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const g = new Map([
      ['/a', ['/b']],
      ['/b', ['/c']],
      ['/c', ['/a']],
    ]);
    expect(cycles(g)).toHaveLength(1);
  });
});
