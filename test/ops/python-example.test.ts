import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * examples/python, as its README runs it: modules generated with the stock protoc and Debian's
 * grpc_tools, then a push, a Subscribe stream and a backend consumer, each a python3 process
 * (Debian's python3-grpcio) talking to a node started through the CLI.
 */

const PYTHON = '/usr/bin/python3'; // Debian's, where python3-grpcio is installed
const examples = fileURLToPath(new URL('../../examples/python/', import.meta.url));
const gen = mkdtempSync(join(tmpdir(), 'pushwire-python-'));
const env = { ...process.env, PYTHON, PUSHWIRE_PY_GEN: gen, PYTHONDONTWRITEBYTECODE: '1' };

interface Run {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function python(script: string, args: string[]): Run {
  const proc = spawn(PYTHON, [join(examples, script), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const run: Run = { proc, stdout: '', stderr: '', exited: new Promise((resolve) => proc.once('exit', resolve)) };
  proc.stdout!.on('data', (d: Buffer) => (run.stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (run.stderr += d.toString()));
  return run;
}

const started = (run: Run, line: string): Promise<boolean> =>
  waitFor(
    () => {
      if (run.proc.exitCode !== null) throw new Error(`exited ${run.proc.exitCode}: ${run.stderr}`);
      return run.stderr.includes(line);
    },
    20_000,
    line,
  );

describe('examples/python against a CLI node', () => {
  let node: NodeProcess;
  const running: Run[] = [];

  beforeAll(async () => {
    const r = spawnSync('sh', [join(examples, 'generate.sh'), gen], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`generate.sh failed (${r.status}): ${r.stdout}${r.stderr}`);
    node = await NodeProcess.start();
  }, 60_000);

  afterAll(async () => {
    for (const r of running) r.proc.kill('SIGKILL');
    await node?.stop();
  });

  it('generate.sh compiles every proto, google.api included', () => {
    const r = spawnSync(PYTHON, ['-c', 'from google.api import annotations_pb2; from pushwire.v1 import push_pb2_grpc, subscribe_pb2_grpc, backend_pb2_grpc'], {
      env: { ...env, PYTHONPATH: gen },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
  });

  it('subscribe.py receives what push.py pushes', async () => {
    const sub = python('subscribe.py', ['--target', node.grpcAddress, '--topic', 'py-news', '--count', '1']);
    running.push(sub);
    await started(sub, 'subscribed');

    const fastCalls = (): Promise<number> => node.metric('pushwire_grpc_fast_path_calls_total', { method: 'PushData' });
    const fast0 = await fastCalls();
    const push = python('push.py', ['--target', node.grpcAddress, '--topic', 'py-news', '--data', 'hello from python']);
    expect(await push.exited, push.stderr).toBe(0);
    const answer = JSON.parse(push.stdout) as { message_id: string; node_id: string };
    expect(answer.node_id).toBe(node.nodeId);
    // push.py sets timeout=10 (grpcio sends grpc-timeout): the gRPC fast path serves deadline calls.
    expect(await fastCalls()).toBe(fast0 + 1);

    expect(await sub.exited, sub.stderr).toBe(0);
    expect(JSON.parse(sub.stdout.trim())).toEqual({ topic: 'py-news', uid: '', data: 'hello from python', message_id: answer.message_id });
  });

  it('consumer.py gets a WebSocket client request and answers it', async () => {
    // Two events: the client's connect, then its request.
    const consumer = python('consumer.py', ['--target', node.grpcAddress, '--reply', '--count', '2']);
    running.push(consumer);
    await started(consumer, 'connected');

    const client = await TestClient.connect(node.wsUrl);
    try {
      client.send({ code: 7, id: 'r1', data: { question: 42 } });
      const accepted = await client.next((f) => f.json?.code === 20005 || f.json?.code === 30005);
      expect(accepted.json).toMatchObject({ code: 20005, id: 'r1' });
      const reply = await client.next((f) => f.json?.code === 20006, 20_000);
      expect(reply.json).toEqual({ code: 20006, message: 'reply', id: 'r1', data: { ok: true, echo: { question: 42 } } });
    } finally {
      await client.close();
    }
    expect(await consumer.exited, consumer.stderr).toBe(0);
    const [connected, request] = consumer.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(connected).toMatchObject({ type: 'connect', pid: 'default', cid: client.cid, node_id: node.nodeId });
    expect(request).toMatchObject({ type: 'request', pid: 'default', cid: client.cid, request_id: 'r1', data: '{"question":42}' });
  });
});
