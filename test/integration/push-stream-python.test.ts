import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';

const SCRIPT = fileURLToPath(new URL('../python/push_stream.py', import.meta.url));

/** A Python with grpcio and grpcio-tools (CI installs python3-grpcio and python3-grpc-tools). */
function python(): string | undefined {
  for (const exe of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(exe, ['-c', 'import grpc, grpc_tools'], { stdio: 'ignore' });
    if (r.status === 0) return exe;
  }
  return undefined;
}
const PYTHON = python();

describe.skipIf(PYTHON === undefined)('PushStream from Python stubs generated from proto/', () => {
  const node = useTestNode();
  const out = mkdtempSync(join(tmpdir(), 'pw-py-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('answers every push in order, the invalid one with INVALID_ARGUMENT, and delivers the rest', async () => {
    const ws = await node.connect();
    expect((await ws.subscribe('py')).code).toBe(20001);
    const count = 200;
    // Asynchronously: the node runs in this process and must keep serving meanwhile.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(PYTHON!, [SCRIPT, out, node.server.grpcAddress, 'py', String(count)], { timeout: 60_000 });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (code) => resolve({ status: code, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message_id: string; node_id: string; error_code: number });
    expect(answers).toHaveLength(count);
    answers.forEach((a, i) => {
      if (i === count / 2) expect(a.error_code).toBe(status.INVALID_ARGUMENT);
      else expect([a.error_code, a.node_id, a.message_id !== '']).toEqual([0, node.server.nodeId, true]);
    });
    await ws.next((f) => f.text === `py${count - 1}`, 10_000);
    expect(ws.deliveries()).toEqual(Array.from({ length: count }, (_, i) => `py${i}`).filter((_, i) => i !== count / 2));
  }, 90_000);
});
