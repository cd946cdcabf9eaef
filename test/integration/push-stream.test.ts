import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { PushDataRequest, type PushServiceClient, type PushStreamResponse } from '../../gen/pushwire/v1/push.js';
import { MAX_UNANSWERED } from '../../src/ingress/grpc/push-stream.js';
import { pushClient } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { waitFor } from '../helpers/ports.js';
import { useTestNode } from '../helpers/fixture.js';
import { startTestServer } from '../helpers/in-process.js';

type Stream = ClientDuplexStream<PushDataRequest, PushStreamResponse>;

/** Writes `reqs` on one PushStream, half-closes, and collects every answer and the final status. */
function streamAll(client: PushServiceClient, reqs: Partial<PushDataRequest>[], metadata = new Metadata()): Promise<{ answers: PushStreamResponse[]; error?: ServiceError }> {
  return new Promise((resolve) => {
    const call: Stream = client.pushStream(metadata);
    const answers: PushStreamResponse[] = [];
    call.on('data', (a: PushStreamResponse) => answers.push(a));
    call.on('error', (error: ServiceError) => resolve({ answers, error }));
    call.on('end', () => resolve({ answers }));
    for (const r of reqs) call.write(PushDataRequest.fromPartial(r));
    call.end();
  });
}

describe('gRPC PushStream', () => {
  const node = useTestNode();

  it('answers every push in request order, and clients get them in that order', async () => {
    const ws = await node.connect();
    expect((await ws.subscribe('s')).code).toBe(20001);
    const n = 3 * MAX_UNANSWERED + 17;
    const reqs = Array.from({ length: n }, (_, i) => ({ topic: 's', data: Buffer.from(`m${i}`) }));
    const { answers, error } = await streamAll(node.grpc, reqs);
    expect(error).toBeUndefined();
    expect(answers).toHaveLength(n);
    expect(answers.every((a) => a.error === undefined && a.nodeId === node.server.nodeId)).toBe(true);
    expect(new Set(answers.map((a) => a.messageId)).size).toBe(n);
    await ws.next((f) => f.text === `m${n - 1}`, 20_000);
    expect(ws.deliveries()).toEqual(reqs.map((r) => r.data.toString()));
  });

  it('a bad push gets its own error answer, in its place; the stream goes on', async () => {
    const ws = await node.connect();
    expect((await ws.subscribe('v')).code).toBe(20001);
    const reqs = [
      { topic: 'v', data: Buffer.from('first') },
      { topic: 'bad topic\n', data: Buffer.from('x') },
      { uid: 'u', topic: 'v', uids: ['a'], data: Buffer.from('x') },
      { topic: 'v', data: Buffer.from('last') },
    ];
    const { answers, error } = await streamAll(node.grpc, reqs);
    expect(error).toBeUndefined();
    expect(answers.map((a) => a.error?.code ?? 0)).toEqual([0, status.INVALID_ARGUMENT, status.INVALID_ARGUMENT, 0]);
    expect(answers[1]!.error!.message).toMatch(/topic/);
    expect(answers[1]!.messageId).toBe('');
    await ws.next((f) => f.text === 'last');
    expect(ws.deliveries()).toEqual(['first', 'last']);
    expect(await metric(node.server.httpUrl, 'pushwire_pushes_total', { ingress: 'grpc_stream', result: 'invalid_argument' })).toBe(2);
  });

  it('idempotency keys work as in PushData: a repeat answers the first id, marked duplicate', async () => {
    const reqs = [
      { topic: 'i', data: Buffer.from('a'), idempotencyKey: 'k1' },
      { topic: 'i', data: Buffer.from('b'), idempotencyKey: 'k1' },
    ];
    const { answers } = await streamAll(node.grpc, reqs);
    expect(answers[0]!.duplicate).toBe(false);
    expect(answers[1]!.duplicate).toBe(true);
    expect(answers[1]!.messageId).toBe(answers[0]!.messageId);
  });

  it('stops reading while its answers are not read: the node holds a bounded number of pushes', async () => {
    // node:http2 directly: a paused stream sends no WINDOW_UPDATE, so answers stop at the client's
    // window, as with a backend that stops reading (grpc-js's client keeps reading into memory).
    const session = connect(`http://${node.server.grpcAddress}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/pushwire.v1.PushService/PushStream', 'content-type': 'application/grpc', te: 'trailers' });
      stream.pause();
      const n = 40_000;
      const frames = Array.from({ length: n }, (_, i) => {
        const body = PushDataRequest.encode(PushDataRequest.fromPartial({ topic: 'nobody', data: Buffer.from(`p${i}`) })).finish();
        const f = Buffer.alloc(5 + body.length);
        f.writeUInt32BE(body.length, 1);
        Buffer.from(body).copy(f, 5);
        return f;
      });
      stream.end(Buffer.concat(frames));
      const accepted = (): Promise<number> => metric(node.server.httpUrl, 'pushwire_pushes_total', { ingress: 'grpc_stream', result: 'ok' });
      const before = await accepted();
      // The node takes pushes until answers fill the client's window and MAX_UNWRITTEN +
      // MAX_UNANSWERED are waiting; then it stops reading. Wait until the count stops moving.
      let last = -1;
      await waitFor(async () => {
        await new Promise((r) => setTimeout(r, 200));
        const now = await accepted();
        const still = now === last && now > before;
        last = now;
        return still;
      }, 30_000, 'the node to stop taking pushes');
      expect(last - before).toBeLessThan(n / 4);
      // Reading again lets every push through, each answered, then the call ends OK.
      let answers = 0;
      let rest = Buffer.alloc(0);
      stream.on('data', (d: Buffer) => {
        // Length-prefixed messages: flag byte, u32 length, body.
        rest = Buffer.concat([rest, d]);
        while (rest.length >= 5 && rest.length >= 5 + rest.readUInt32BE(1)) {
          answers++;
          rest = rest.subarray(5 + rest.readUInt32BE(1));
        }
      });
      const trailers = new Promise<Record<string, unknown>>((resolve) => stream.on('trailers', (t) => resolve(t)));
      stream.resume();
      expect((await trailers)['grpc-status']).toBe('0');
      expect(answers).toBe(n);
    } finally {
      session.close();
    }
  }, 60_000);
});

describe('gRPC PushStream with API keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-stream-'));
  const file = join(dir, 'projects.json');
  writeFileSync(file, JSON.stringify({ projects: [{ pid: 'shop', apiKeys: [{ key: 'shop-stream-key-0123456789' }, { key: 'shop-batch-only-0123456789', methods: ['PushDataBatch'] }] }] }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('needs a key allowed PushData; pushes go to the key project', async () => {
    const server = await startTestServer(['--projects', file]);
    const client = pushClient(server.grpcAddress);
    try {
      const none = await streamAll(client, [{ topic: 't', data: Buffer.from('x') }]);
      expect(none.error?.code).toBe(status.UNAUTHENTICATED);
      expect(none.answers).toHaveLength(0);
      const batchOnly = new Metadata();
      batchOnly.set('authorization', 'Bearer shop-batch-only-0123456789');
      expect((await streamAll(client, [{ topic: 't', data: Buffer.from('x') }], batchOnly)).error?.code).toBe(status.PERMISSION_DENIED);
      const good = new Metadata();
      good.set('authorization', 'Bearer shop-stream-key-0123456789');
      const ok = await streamAll(client, [{ topic: 't', data: Buffer.from('x') }, { pid: 'blog', topic: 't', data: Buffer.from('y') }], good);
      expect(ok.error).toBeUndefined();
      expect(ok.answers[0]!.error).toBeUndefined();
      expect(ok.answers[1]!.error?.code).toBe(status.PERMISSION_DENIED);
    } finally {
      client.close();
      await server.shutdown();
    }
  });
});
