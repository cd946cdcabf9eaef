import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../helpers/node-process.js';
import { Tally, batch, check, expectServes } from './support.js';

/**
 * Property: raw bytes as the request of every gRPC method the node serves (every service in
 * gen/, found at run time, so a new method is fuzzed too) end in a documented status — the
 * request's own error (INVALID_ARGUMENT, NOT_FOUND, ...), OK, or for a stream that was accepted
 * our own deadline — never INTERNAL or UNKNOWN, and the node (a real process) keeps serving.
 */

interface Method {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  /** Encodes a default request, the seed for mutated valid-ish inputs. */
  requestSerialize: (m: unknown) => Buffer;
  requestDeserialize: (b: Buffer) => unknown;
}

async function methods(): Promise<Method[]> {
  const gen = fileURLToPath(new URL('../../gen/', import.meta.url));
  const files = readdirSync(gen, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const found = new Map<string, Method>();
  for (const f of files) {
    const mod = (await import(`${gen}${f}`)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (typeof value !== 'object' || value === null) continue;
      for (const m of Object.values(value as Record<string, unknown>)) {
        const method = m as Partial<Method>;
        if (typeof method?.path === 'string' && typeof method.requestSerialize === 'function') found.set(method.path, method as Method);
      }
    }
  }
  return [...found.values()].filter((m) => !m.requestStream);
}

/** What a caller may see. CANCELLED / DEADLINE_EXCEEDED only when we ended an accepted stream. */
const DOCUMENTED = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
  status.FAILED_PRECONDITION,
  status.RESOURCE_EXHAUSTED,
  status.UNIMPLEMENTED,
  status.UNAVAILABLE,
]);

/** How long an accepted server stream is left open before we cancel it. */
const STREAM_LINGER_MS = 50;

function call(client: Client, m: Method, bytes: Buffer, md: Metadata): Promise<{ code: number; details: string; ours: boolean }> {
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve) => {
    if (!m.responseStream) {
      client.makeUnaryRequest(m.path, id, id, bytes, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null) =>
        resolve({ code: err?.code ?? status.OK, details: err?.details ?? '', ours: false }),
      );
      return;
    }
    let ours = false;
    const stream = client.makeServerStreamRequest(m.path, id, id, bytes, md, {});
    const cancel = (): void => {
      ours = true;
      stream.cancel();
    };
    // Accepted (a message or headers came, or nothing went wrong for a moment): we end it.
    const timer = setTimeout(cancel, STREAM_LINGER_MS);
    stream.on('data', cancel);
    stream.on('error', () => {});
    stream.on('status', (s: { code: number; details: string }) => {
      clearTimeout(timer);
      resolve({ code: s.code, details: s.details, ours });
    });
  });
}

describe('fuzz: gRPC raw bytes for every method', async () => {
  const all = await methods();
  let node: NodeProcess;
  let client: Client;
  const tallies: Tally[] = [];
  beforeAll(async () => {
    node = await NodeProcess.start();
    client = new Client(node.grpcAddress, credentials.createInsecure());
  });
  afterAll(async () => {
    for (const t of tallies) t.report(node);
    client?.close();
    await node?.stop();
  });

  it('finds the methods to fuzz', () => {
    expect(all.map((m) => m.path)).toEqual(expect.arrayContaining(['/pushwire.v1.PushService/PushData', '/pushwire.v1.SubscribeService/Subscribe']));
  });

  for (const m of all) {
    it(`answers ${m.path} with a documented status for any bytes`, async () => {
      const tally = new Tally(`grpc ${m.path}`);
      tallies.push(tally);
      const empty = m.requestSerialize(m.requestDeserialize(Buffer.alloc(0)));
      // Random bytes, and valid encodings with bytes flipped, cut or appended (deeper into the decoder).
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.tuple(fc.uint8Array({ maxLength: 60 }), fc.nat(), fc.nat(255)).map(([tail, at, v]) => {
          const b = Buffer.concat([empty, Buffer.from(tail)]);
          if (b.length > 0) b[at % b.length] = v;
          return b;
        }),
        // Length-delimited fields with lengths that lie, nested: the classic decoder traps.
        fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.nat(0x7fffffff)), { maxLength: 8 }).map((fields) =>
          Buffer.concat(fields.map(([field, len]) => Buffer.from([(field << 3) | 2, ...varint(len)]))),
        ),
      );
      const md = fc.option(fc.string({ maxLength: 30 }).filter((k) => /^[\x20-\x7e]*$/.test(k)), { freq: 3 });
      await check(
        // Streams one at a time: cancelling many at once trips node:http2's rapid-reset guard, which
        // closes the whole session (our client's doing, not an answer to the bytes).
        fc.asyncProperty(fc.array(fc.tuple(bytes, md), m.responseStream ? { minLength: 1, maxLength: 1 } : batch(1, 32)), async (cases) => {
          await Promise.all(
            cases.map(async ([b, key]) => {
              const metadata = new Metadata();
              if (key !== null) metadata.set('authorization', `Bearer ${key}`);
              const r = await call(client, m, b, metadata);
              const ok = DOCUMENTED.has(r.code) || (r.ours && r.code === status.CANCELLED);
              expect(ok, `${m.path} ${b.toString('hex')}: ${r.code} ${r.details}`).toBe(true);
            }),
          );
          tally.add(cases.length);
        }),
        tally,
        m.responseStream ? 40 : 120,
        // Accepted streams linger STREAM_LINGER_MS each: a smaller share of the long run.
        m.responseStream ? 0.0005 : 0.0025,
      );
    });
  }

  it('still serves pushes after all of it', async () => {
    await expectServes(node);
    expect(node.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
