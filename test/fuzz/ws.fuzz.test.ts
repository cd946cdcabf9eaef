import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../helpers/node-process.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';
import { Tally, batch, check, deepJson, expectServes } from './support.js';

/**
 * Property: whatever frames a client sends, on /ws (gpush) or /connect (ws-cluster), text or
 * binary, the node answers each with exactly one documented reply, in order, keeps the
 * connection open, and still serves pushes. The node is a real process (a crash is an exit).
 * With no backend connected and random login tokens, every frame has exactly one answer:
 * docs/protocol.md's catalogue.
 */

const REPLY_CODES = new Set([20001, 20002, 20004, 20005, 30001, 30002, 30003, 30004, 30005, 30006, 30007]);

interface Sent {
  text?: string;
  binary?: Buffer;
}

const anyValue = fc.jsonValue({ maxDepth: 4 });
const idLike = fc.oneof(fc.integer(), fc.string({ maxLength: 70 }), fc.double(), anyValue);
const topicLike = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 300 }), anyValue);

const gpushFrame = fc
  .record(
    {
      code: fc.oneof(fc.constantFrom(1, 2, 3, 4, 5, 6, 7), fc.integer({ min: -5, max: 40_000 }), fc.double(), fc.string({ maxLength: 3 }), anyValue),
      topic: topicLike,
      id: idLike,
      data: fc.oneof(anyValue, fc.string({ maxLength: 100 })),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));

const wscFrame = fc
  .record(
    {
      affair_id: idLike,
      ack_id: idLike,
      type: fc.oneof(fc.constant('heart'), fc.string({ maxLength: 20 }), anyValue),
      payload: anyValue,
      to: fc.oneof(fc.record({ cids: fc.array(fc.string({ maxLength: 20 })), uids: fc.array(fc.string({ maxLength: 20 })) }, { requiredKeys: [] }), anyValue),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));

const deepFrame = fc
  .tuple(deepJson(6000), fc.constantFrom('gpush', 'wsc', 'bare'))
  .map(([d, shape]) => (shape === 'gpush' ? `{"code":7,"id":1,"data":${d}}` : shape === 'wsc' ? `{"ack_id":1,"payload":${d}}` : d));

const textFrame = fc.oneof(
  { weight: 4, arbitrary: gpushFrame },
  { weight: 3, arbitrary: wscFrame },
  { weight: 1, arbitrary: deepFrame },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('ping', 'PING', 'pInG', 'pong', '', '{', '[]', 'null', '{"type":"heart"}') },
);

const frame: fc.Arbitrary<Sent> = fc.oneof(
  { weight: 6, arbitrary: textFrame.map((text) => ({ text })) },
  { weight: 1, arbitrary: textFrame.map((t) => ({ binary: Buffer.from(t) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ binary: Buffer.from(b) })) },
);

const textOf = (f: Sent): string | undefined =>
  f.text !== undefined ? Buffer.from(f.text).toString('utf8') : isUtf8(f.binary!) ? f.binary!.toString('utf8') : undefined;

/** A text ping or a well-formed heart: answered at once, not in request order. */
function isKeepalive(f: Sent): boolean {
  const text = textOf(f);
  if (text === undefined) return false;
  if (text.length === 4 && text.toLowerCase() === 'ping') return true;
  try {
    const b = JSON.parse(text) as Record<string, unknown> | null;
    if (typeof b !== 'object' || b === null || Array.isArray(b) || b.type !== 'heart') return false;
    const a = b.ack_id;
    return a === undefined || (typeof a === 'string' && a.length <= 64) || (typeof a === 'number' && Number.isSafeInteger(a));
  } catch {
    return false;
  }
}

const isKeepaliveReply = (r: Frame): boolean => r.text === 'pong' || r.json?.type === 'heart';

/** What docs/protocol.md says the answer to `sent` is; throws (an assertion) when `reply` is not it. */
function checkReply(sent: Sent, reply: Frame): void {
  const raw = sent.text ?? sent.binary!;
  if (typeof raw !== 'string' && !isUtf8(raw)) {
    expect(reply.json?.code, 'non-UTF-8 binary frame').toBe(30001);
    return;
  }
  const text = typeof raw === 'string' ? Buffer.from(raw).toString('utf8') : raw.toString('utf8');
  if (text.length === 4 && text.toLowerCase() === 'ping') {
    expect(reply.text).toBe('pong');
    return;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    expect(reply.json, text).toMatchObject({ code: 30001, message: 'bad request' });
    return;
  }
  const r = reply.json;
  expect(r, `reply to ${text.slice(0, 200)}: ${reply.text.slice(0, 200)}`).toBeDefined();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    expect(r).toMatchObject({ code: 30001 });
    return;
  }
  const b = body as Record<string, unknown>;
  if (b.type === 'heart' && r!.type === 'heart') {
    expect(r!.payload).toMatchObject({ client_id: expect.any(String) });
    return;
  }
  if (r!.ack_id !== undefined && r!.message === undefined) {
    // ws-cluster's ack: only successful acks lack a message, and no backend is connected.
    throw new Error(`unexpected ack ${reply.text}`);
  }
  expect(typeof r!.code === 'number' && (REPLY_CODES.has(r!.code) || (r!.ack_id !== undefined && REPLY_CODES.has(r!.code))), reply.text).toBe(true);
  if (r!.code !== 0 && r!.ack_id === undefined) expect(typeof r!.message).toBe('string');
  if (r!.code === 30001) expect(typeof r!.detail).toBe('string');
  // An echoed id is the request's own.
  if (r!.id !== undefined && r!.ack_id === undefined) expect([b.id, b.affair_id]).toContainEqual(r!.id);
  // The requests the catalogue fixes an answer for, given a well-formed id and a short frame.
  const idOk = b.id === undefined || (typeof b.id === 'string' && b.id.length <= 64) || (typeof b.id === 'number' && Number.isSafeInteger(b.id));
  const topicOk = typeof b.topic === 'string' && b.topic !== '' && Buffer.byteLength(b.topic) <= 256 && !/[\u0000-\u001f\u007f]/.test(b.topic);
  if (b.type === undefined && idOk && text.length < 1000) {
    if ((b.code === 1 || b.code === 2) && topicOk) expect([20001, 20002, 30007]).toContain(r!.code);
    if (b.code === 4) expect(r!.code).toBe(20004);
    if ((b.code === 5 || b.code === 6) && topicOk) expect(r!.code).toBe(30002);
    if (typeof b.code === 'number' && ![1, 2, 3, 4, 5, 6, 7].includes(b.code)) expect(r!.code).toBe(30001);
  }
}

describe('fuzz: WebSocket frames (both dialects, text and binary)', () => {
  let node: NodeProcess;
  const tallies: Tally[] = [];
  beforeAll(async () => {
    node = await NodeProcess.start(['--jwt-secret', 'fuzz-secret-fuzz-secret']);
  });
  afterAll(async () => {
    for (const t of tallies) t.report(node);
    await node?.stop();
  });

  for (const path of ['/ws', '/connect']) {
    it(`answers every frame on ${path} with one documented reply, in order, and keeps serving`, async () => {
      const tally = new Tally(`ws ${path}`);
      tallies.push(tally);
      const c = await TestClient.connect(`ws://127.0.0.1:${node.ports.ws}${path}`);
      let answered = 0;
      await check(
        fc.asyncProperty(fc.array(frame, batch(20, 400)), async (frames) => {
          for (const f of frames) {
            if (f.text !== undefined) c.ws.send(f.text);
            else c.ws.send(f.binary!, { binary: true });
          }
          const replies: Frame[] = [];
          for (let i = 0; i < frames.length; i++) replies.push(await c.next(() => true, 10_000));
          answered += replies.length;
          // Pings and hearts are answered at once, ahead of requests still running; the rest in order.
          const early = replies.filter(isKeepaliveReply);
          const ordered = replies.filter((r) => !isKeepaliveReply(r));
          const sentEarly = frames.filter(isKeepalive);
          const sentOrdered = frames.filter((f) => !isKeepalive(f));
          expect(early.length).toBe(sentEarly.length);
          sentEarly.forEach((f, i) => checkReply(f, early[i]!));
          sentOrdered.forEach((f, i) => checkReply(f, ordered[i]!));
          tally.add(frames.length);
        }),
        tally,
        150,
        0.45,
      );
      expect(c.ws.readyState).toBe(c.ws.OPEN);
      expect(answered).toBe(tally.inputs);
      await c.close();
      await expectServes(node);
    });
  }
});
