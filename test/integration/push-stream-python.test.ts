import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { metric } from '../helpers/metrics.js';

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

  /** Runs push_stream.py: `count` pushes to `topic`, a deadline of `timeout` s if given. Its answers. */
  async function run(topic: string, count: number, timeout?: number): Promise<Array<{ message_id: string; node_id: string; error_code: number }>> {
    // Asynchronously: the node runs in this process and must keep serving meanwhile.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const args = [SCRIPT, out, node.server.grpcAddress, topic, String(count), ...(timeout === undefined ? [] : [String(timeout)])];
      const p = spawn(PYTHON!, args, { timeout: 60_000 });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (code) => resolve({ status: code, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message_id: string; node_id: string; error_code: number });
  }

  it('answers every push in order, the invalid one with INVALID_ARGUMENT, and delivers the rest', async () => {
    const ws = await node.connect();
    expect((await ws.subscribe('py')).code).toBe(20001);
    const count = 200;
    const answers = await run('py', count);
    expect(answers).toHaveLength(count);
    answers.forEach((a, i) => {
      if (i === count / 2) expect(a.error_code).toBe(status.INVALID_ARGUMENT);
      else expect([a.error_code, a.node_id, a.message_id !== '']).toEqual([0, node.server.nodeId, true]);
    });
    await ws.next((f) => f.text === `py${count - 1}`, 10_000);
    expect(ws.deliveries()).toEqual(Array.from({ length: count }, (_, i) => `py${i}`).filter((_, i) => i !== count / 2));
  }, 90_000);

  it('with a deadline (timeout=60, sent as grpc-timeout) the stream is served by the gRPC fast path', async () => {
    const fast0 = await metric(node.server.httpUrl, 'pushwire_grpc_fast_path_calls_total', { method: 'PushStream' });
    const answers = await run('py-deadline', 20, 60);
    expect(answers.map((a) => a.error_code)).toEqual(Array.from({ length: 20 }, (_, i) => (i === 10 ? status.INVALID_ARGUMENT : 0)));
    expect(await metric(node.server.httpUrl, 'pushwire_grpc_fast_path_calls_total', { method: 'PushStream' })).toBe(fast0 + 1);
  }, 90_000);
});
