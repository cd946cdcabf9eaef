import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, pushClient, pushData, restPush } from '../helpers/grpc-client.js';
import { NodeProcess } from '../helpers/node-process.js';
import { TestClient } from '../helpers/ws-client.js';

describe('a node started through the CLI', () => {
  let node: NodeProcess;
  beforeAll(async () => {
    node = await NodeProcess.start(['--jwt-secret', 'smoke-secret']);
  });
  afterAll(async () => {
    await node.stop();
  });

  it('delivers a gRPC push and a REST push to a subscribed WebSocket client', async () => {
    const client = await TestClient.connect(node.wsUrl);
    expect(client.cid).toMatch(new RegExp(`^${node.nodeId}-`));
    expect((await client.subscribe('news')).code).toBe(20001);

    const grpc = pushClient(node.grpcAddress);
    const res = await pushData(grpc, { topic: 'news', data: Buffer.from('from grpc') });
    expect(res.messageId).toBeTruthy();
    expect(res.nodeId).toBe(node.nodeId);
    expect((await client.next((f) => f.text === 'from grpc')).binary).toBe(false);

    const rest = await restPush(node.httpUrl, { topic: 'news', data: b64('from rest') });
    expect(rest.status).toBe(200);
    expect(rest.json.messageId).toBeTruthy();
    await client.next((f) => f.text === 'from rest');
    grpc.close();
    await client.close();
  });
});
