import { Code, PushwireError } from '../../core/errors.js';
import type { Publisher, PushRequest } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import { TOO_DEEP, nestsDeeperThan } from '../json-depth.js';
import { decodeProtoJson, type FieldSpec } from './proto-json.js';

/**
 * What POST /v1/pushData and /v1/pushData:batch do once the body is read, shared by the
 * express routes and the node:http fast path (fast-push.ts), so both answer alike.
 */

export const PUSH_DATA_PATH = '/v1/pushData';
export const PUSH_DATA_BATCH_PATH = '/v1/pushData:batch';

const PUSH_DATA_REQUEST: readonly FieldSpec[] = [
  { name: 'uid', kind: 'string' },
  { name: 'topic', kind: 'string' },
  { name: 'data', kind: 'bytes' },
  { name: 'pid', kind: 'string' },
  { name: 'idempotency_key', kind: 'string' },
  { name: 'uids', kind: 'strings' },
  { name: 'cids', kind: 'strings' },
  { name: 'tags', kind: 'strings' },
  { name: 'reply_to', kind: 'string' },
  { name: 'ttl', kind: 'uint32' },
  { name: 'skip_history', kind: 'bool' },
];

const PUSH_DATA_BATCH_REQUEST: readonly FieldSpec[] = [
  { name: 'pushes', kind: 'messages', of: { typeName: 'pushwire.v1.PushDataRequest', fields: PUSH_DATA_REQUEST } },
];

/** Largest request body: base64 inflates 4/3; the slack covers the JSON around it. */
export const bodyLimit = (maxPushBytes: number): number => Math.ceil((maxPushBytes * 4) / 3) + 64 * 1024;

/** The key of `Authorization: Bearer <key>` (the whole header when it has another form). */
export function bearerKey(header: string | undefined): string | undefined {
  return header === undefined ? undefined : (/^Bearer\s+(\S+)$/i.exec(header.trim())?.[1] ?? header);
}

/** The parsed JSON body; grpc-gateway treats an empty (or absent) body as the empty message. */
export function parseJsonBody(raw: Buffer | undefined): unknown {
  if (raw === undefined || raw.length === 0) return {};
  const text = raw.toString('utf8');
  // Decoding and error messages walk the value recursively (see json-depth.ts).
  if (nestsDeeperThan(text)) throw new PushwireError(Code.INVALID_ARGUMENT, `request body: ${TOO_DEEP}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new PushwireError(Code.INVALID_ARGUMENT, 'request body is not valid JSON');
  }
}

const pushRequest = (fields: Record<string, unknown>): PushRequest => ({
  uid: (fields.uid as string | undefined) ?? '',
  topic: (fields.topic as string | undefined) ?? '',
  data: (fields.data as Buffer | undefined) ?? Buffer.alloc(0),
  pid: (fields.pid as string | undefined) ?? '',
  idempotencyKey: (fields.idempotency_key as string | undefined) ?? '',
  uids: (fields.uids as string[] | undefined) ?? [],
  cids: (fields.cids as string[] | undefined) ?? [],
  tags: (fields.tags as string[] | undefined) ?? [],
  replyTo: (fields.reply_to as string | undefined) ?? '',
  ttl: (fields.ttl as number | undefined) ?? 0,
  skipHistory: (fields.skip_history as boolean | undefined) ?? false,
});

/** PushData: the proto3 JSON response object. Throws/rejects with PushwireError. */
export async function pushData(publisher: Publisher, raw: Buffer | undefined, keyPid: string | undefined): Promise<object> {
  const fields = decodeProtoJson(parseJsonBody(raw), 'pushwire.v1.PushDataRequest', PUSH_DATA_REQUEST);
  const result = await publisher.push(pushRequest(fields), 'http', keyPid);
  // proto3 JSON leaves out default values: `duplicate` appears only when true.
  const out: Record<string, unknown> = { messageId: result.messageId, nodeId: result.nodeId };
  if (result.duplicate) out.duplicate = true;
  // uint64 as a decimal string, as proto3 JSON writes it.
  if (result.offset) out.offset = String(result.offset);
  if (result.epoch) out.epoch = result.epoch;
  return out;
}

/** PushDataBatch: the proto3 JSON response object. */
export async function pushDataBatch(publisher: Publisher, raw: Buffer | undefined, keyPid: string | undefined): Promise<object> {
  const fields = decodeProtoJson(parseJsonBody(raw), 'pushwire.v1.PushDataBatchRequest', PUSH_DATA_BATCH_REQUEST);
  const pushes = ((fields.pushes as Record<string, unknown>[] | undefined) ?? []).map(pushRequest);
  const result = await publisher.pushBatch(pushes, 'http', keyPid);
  // proto3 JSON: default fields left out, so a push without history answers `{}` in `results`.
  const results = result.results.map((r) => {
    const out: Record<string, unknown> = {};
    if (r.offset !== '0') out.offset = r.offset;
    if (r.epoch) out.epoch = r.epoch;
    if (r.duplicate) out.duplicate = true;
    return out;
  });
  return { messageIds: result.messageIds, nodeId: result.nodeId, results };
}

/**
 * The google.rpc.Status code and message answering a failed request: PushwireError as is,
 * body-reading failures (typed as body-parser types them) as grpc-gateway would, anything
 * else logged and INTERNAL.
 */
export function failureStatus(err: unknown, limit: number, logger: Logger): { code: Code; message: string } {
  if (err instanceof PushwireError) return { code: err.code, message: err.message };
  const type = (err as { type?: string }).type;
  if (type === 'entity.too.large') return { code: Code.INVALID_ARGUMENT, message: `request body exceeds ${limit} bytes` };
  if (type !== undefined && type.startsWith('encoding.')) return { code: Code.INVALID_ARGUMENT, message: 'unsupported request body encoding' };
  if (type === 'request.aborted') return { code: Code.CANCELLED, message: 'request aborted' };
  // body-parser marks the client's faults 4xx: a corrupt gzip/deflate/br body (zlib's error),
  // a size mismatch. Client input, so INVALID_ARGUMENT and no error log: a bad client must not
  // be able to write a stack trace per request.
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    logger.debug({ err: (err as Error).message }, 'bad http request body');
    const zlib = /^Z_|^ERR_(BROTLI|ZLIB)/.test(String((err as { code?: unknown }).code));
    return { code: Code.INVALID_ARGUMENT, message: zlib ? `request body could not be decompressed: ${(err as Error).message}` : (err as Error).message };
  }
  logger.error({ err }, 'http request failed');
  return { code: Code.INTERNAL, message: 'internal error' };
}
