import { status, type sendUnaryData } from '@grpc/grpc-js';
import { PushwireError } from '../../core/errors.js';
import type { ApiMethod, ProjectRegistry } from '../../core/projects/registry.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Data, Empty, ProxyServer } from '../../../gen/order/proxy.js';
import type { PushDataBatchRequest, PushDataBatchResponse, PushDataRequest, PushDataResponse } from '../../../gen/pushwire/v1/push.js';
import { decodeFailure } from './tolerant-decode.js';

export interface Deps {
  publisher: Publisher;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
}

/** What handlers read of a call's metadata: grpc-js's Metadata, or the fast path's view of the headers. */
export interface MetadataLike {
  get(key: string): unknown[];
}

/** What a unary handler reads of its call (grpc-js's ServerUnaryCall has more). */
export interface UnaryCallLike<Req> {
  readonly request: Req;
  readonly metadata: MetadataLike;
}

/** A unary handler as unary() makes it: grpc-js's handleUnaryCall, and the fast path's too. */
export type UnaryHandler<Req, Res> = (call: UnaryCallLike<Req>, callback: sendUnaryData<Res>) => void;

/** The key of `authorization: Bearer <key>` metadata, if any. */
export function bearer(metadata: MetadataLike): string | undefined {
  const value = metadata.get('authorization')[0];
  const m = typeof value === 'string' ? /^Bearer\s+(\S+)$/i.exec(value.trim()) : null;
  return m?.[1] ?? (typeof value === 'string' ? value : undefined);
}

/**
 * Wraps a use case as a grpc-js unary handler: the generated code decodes, the caller's API
 * key is checked for `api` (giving its project, or undefined on an open API), `work` runs the
 * core, PushwireError codes pass through as gRPC status codes, and the call is timed.
 */
export function unary<Req, Res>(method: string, api: ApiMethod, o: Deps, work: (req: Req, keyPid: string | undefined) => Promise<Res>): UnaryHandler<Req, Res> {
  const ok = o.metrics.grpcDuration.labels({ method, code: 'OK' });
  const failed = (started: number, err: unknown): { code: number; details: string } => {
    const known = err instanceof PushwireError;
    const code = known ? err.code : status.INTERNAL;
    if (!known) o.logger.error({ err, method }, 'gRPC call failed');
    o.metrics.grpcDuration.observe({ method, code: status[code] }, (performance.now() - started) / 1000);
    return { code, details: known ? err.message : 'internal error' };
  };
  return (call: UnaryCallLike<Req>, callback: sendUnaryData<Res>): void => {
    const started = performance.now();
    // Called directly, not through `new Promise(...)`: one promise and two closures per call fewer.
    let pending: Promise<Res>;
    try {
      const undecodable = decodeFailure(call.request);
      if (undecodable !== undefined) throw undecodable;
      pending = work(call.request, o.projects.authorize(bearer(call.metadata), api));
    } catch (err) {
      callback(failed(started, err));
      return;
    }
    pending.then(
      (res) => {
        ok.observe((performance.now() - started) / 1000);
        callback(null, res);
      },
      (err: unknown) => callback(failed(started, err)),
    );
  };
}

/** PushService's handlers, typed as what they read, so the fast path can run them too. */
export type PushServiceHandlers<Stream> = {
  pushStream: Stream;
  pushData: UnaryHandler<PushDataRequest, PushDataResponse>;
  pushDataBatch: UnaryHandler<PushDataBatchRequest, PushDataBatchResponse>;
};

/** pushwire.v1.PushService; PushStream is in push-stream.ts. */
export function pushService<Stream>(o: Deps, pushStream: Stream): PushServiceHandlers<Stream> {
  return {
    pushStream,
    // PushResult goes to the serializer as is (encodePushDataResponse takes either shape).
    pushData: unary('PushData', 'PushData', o, (req, keyPid) => o.publisher.push(req, 'grpc', keyPid) as Promise<unknown> as Promise<PushDataResponse>),
    pushDataBatch: unary('PushDataBatch', 'PushDataBatch', o, (req, keyPid) => o.publisher.pushBatch(req.pushes, 'grpc', keyPid)),
  };
}

/** gpush's order.Proxy, for callers that predate pushwire: the same use case, gpush's Empty reply. */
export function legacyProxyService(o: Deps): ProxyServer {
  return {
    pushData: unary<Data, Empty>('order.Proxy/PushData', 'PushData', o, (req, keyPid) =>
      o.publisher.push(req, 'grpc_gpush', keyPid).then(() => ({})),
    ),
  };
}

const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function varint64Size(n: number): number {
  let size = 1;
  for (; n >= 0x80; n = Math.floor(n / 128)) size++;
  return size;
}

/** A PushDataResponse, or the PushResult it is written from (offset a number, fields optional). */
export type PushReply = Omit<PushDataResponse, 'offset' | 'epoch'> & { offset?: string | number; epoch?: string };

/**
 * PushDataResponse's wire bytes, written straight into one Buffer: the same bytes as the generated
 * encoder (fields in order, defaults left out), without its BinaryWriter and the copy out of it,
 * once per unary call.
 */
export function encodePushDataResponse(m: PushReply): Buffer {
  const id = m.messageId === '' ? 0 : Buffer.byteLength(m.messageId);
  const node = m.nodeId === '' ? 0 : Buffer.byteLength(m.nodeId);
  // PushResult (from the publisher) has offset as a number, PushDataResponse as a decimal string.
  const offset = m.offset === undefined ? 0 : Number(m.offset);
  const epoch = m.epoch === undefined || m.epoch === '' ? 0 : Buffer.byteLength(m.epoch);
  const size =
    (id ? 1 + varintSize(id) + id : 0) +
    (node ? 1 + varintSize(node) + node : 0) +
    (m.duplicate ? 2 : 0) +
    (offset ? 1 + varint64Size(offset) : 0) +
    (epoch ? 1 + varintSize(epoch) + epoch : 0);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  if (id) o = putString(out, o, 0x0a, m.messageId, id);
  if (node) o = putString(out, o, 0x12, m.nodeId, node);
  if (m.duplicate) {
    out[o++] = 0x18;
    out[o++] = 1;
  }
  if (offset) {
    out[o++] = 0x20;
    o = putVarint(out, o, offset);
  }
  if (epoch) putString(out, o, 0x2a, m.epoch!, epoch);
  return out;
}

/** Writes `n` (a safe integer ≥ 0) as a varint at `o`; returns the offset after it. Offsets stay below 2^53, so 7 bits at a time by division is exact. */
function putVarint(out: Buffer, o: number, n: number): number {
  for (; n >= 0x80; n = Math.floor(n / 128)) out[o++] = (n % 128) | 0x80;
  out[o++] = n;
  return o;
}

/** Writes a length-delimited string field (tag, `len`, the bytes of `s`) at `o`; returns the offset after it. */
function putString(out: Buffer, o: number, tag: number, s: string, len: number): number {
  out[o++] = tag;
  o = putVarint(out, o, len);
  return o + out.write(s, o);
}

/** Bytes of a length-delimited string field (tag, length, bytes) holding `len` bytes; 0 when empty. */
const stringField = (len: number): number => (len === 0 ? 0 : 1 + varintSize(len) + len);

/**
 * PushDataBatchResponse's wire bytes, as the generated encoder writes them (message ids, node id,
 * then one length-delimited PushDataBatchResult per push, empty ones included), written straight
 * into one Buffer: a batch of pushes to channels with history would otherwise cost a BigInt per
 * offset (the generated uint64 path) and a BinaryWriter fork per result.
 */
export function encodePushDataBatchResponse(m: PushDataBatchResponse): Buffer {
  const ids = m.messageIds.map((id) => Buffer.byteLength(id));
  const node = Buffer.byteLength(m.nodeId);
  const offsets = m.results.map((r) => Number(r.offset));
  const epochs = m.results.map((r) => Buffer.byteLength(r.epoch));
  const inner = m.results.map((r, i) => (offsets[i] ? 1 + varint64Size(offsets[i]!) : 0) + stringField(epochs[i]!) + (r.duplicate ? 2 : 0));
  let size = stringField(node);
  for (const len of ids) size += 1 + varintSize(len) + len;
  for (const len of inner) size += 1 + varintSize(len) + len;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  m.messageIds.forEach((id, i) => (o = putString(out, o, 0x0a, id, ids[i]!)));
  if (node) o = putString(out, o, 0x12, m.nodeId, node);
  m.results.forEach((r, i) => {
    out[o++] = 0x1a;
    o = putVarint(out, o, inner[i]!);
    if (offsets[i]) {
      out[o++] = 0x08;
      o = putVarint(out, o, offsets[i]!);
    }
    if (epochs[i]) o = putString(out, o, 0x12, r.epoch, epochs[i]!);
    if (r.duplicate) {
      out[o++] = 0x18;
      out[o++] = 1;
    }
  });
  return out;
}
