import { topicProblem } from '../../core/names.js';
import { TOO_DEEP, nestsDeeperThan } from '../json-depth.js';

/**
 * gpush's client protocol, with its bugs fixed: requests `{"code":N,"topic":...,"data":...}`,
 * replies and errors in the 2xxxx / 3xxxx ranges. Every reply echoes `topic` and the optional
 * client `id` so concurrent requests can be matched. docs/protocol.md is the reference.
 */
export const RequestCode = {
  SUBSCRIBE: 1,
  UNSUBSCRIBE: 2,
  LOGIN: 3,
  LOGOUT: 4,
  SUBSCRIBE_PRIVATE: 5,
  UNSUBSCRIBE_PRIVATE: 6,
  /** A request to the project's backends (BackendService consumers, server connections). */
  REQUEST: 7,
} as const;

export const ReplyCode = {
  CONNECTED: 20000,
  SUBSCRIBED: 20001,
  UNSUBSCRIBED: 20002,
  LOGGED_IN: 20003,
  LOGGED_OUT: 20004,
  /** A code-7 request reached the backends (one consumer per group). */
  ACCEPTED: 20005,
  /** A backend's answer to a code-7 request (a push with reply_to). */
  REPLY: 20006,
} as const;

export const ErrorCode = {
  BAD_REQUEST: 30001,
  NOT_LOGGED_IN: 30002,
  AUTH_FAILED: 30003,
  RATE_LIMITED: 30004,
  /** No backend consumer of the project is connected: the request went nowhere. */
  NO_BACKEND: 30005,
  /** The cluster could not take the message (Redis down); nothing was sent. */
  UNAVAILABLE: 30006,
  /** The connection already holds --max-subscriptions topics. */
  TOO_MANY_SUBSCRIPTIONS: 30007,
  /** Sent to Redis but not confirmed within --bus-timeout: it may or may not have gone out. */
  OUTCOME_UNKNOWN: 30008,
} as const;

/** The `message` text of each code, shared by both protocols (docs/protocol.md). */
export const MESSAGES: Readonly<Record<number, string>> = {
  20000: 'connected',
  20001: 'subscribed',
  20002: 'unsubscribed',
  20003: 'logged in',
  20004: 'logged out',
  20005: 'request accepted',
  20006: 'reply',
  30001: 'bad request',
  30002: 'not logged in',
  30003: 'auth failed',
  30004: 'too many requests',
  30005: 'no backend connected',
  30006: 'cluster unavailable',
  30007: 'too many subscriptions',
  30008: 'outcome unknown',
};

export const MAX_ID_LENGTH = 64;

export type RequestId = string | number;

export type Request =
  | { code: 1 | 2 | 5 | 6; topic: string; id?: RequestId }
  | { code: 3; token: string; topic?: string; id?: RequestId }
  | { code: 4; topic?: string; id?: RequestId }
  | { code: 7; id: RequestId; topic?: string; data: Buffer };

/**
 * ws-cluster's message frame `{affair_id?, ack_id?, type?, payload?, to?}` (no `code`): from a
 * user connection a request to the backends; from a server connection a reply or push to `to`.
 */
export interface WscMessage {
  code: 'wsc';
  affairId?: RequestId;
  ackId?: RequestId;
  type?: string;
  /** The payload as JSON text ('' when absent). */
  payload: Buffer;
  to?: { cids: string[]; uids: string[] };
}

/** ws-cluster's keepalive, `{"type":"heart","ack_id":X}`: answered at once, like a text ping. */
export interface Heart {
  code: 'heart';
  ackId?: RequestId;
}

/** A request that could not be understood, with whatever could be echoed back. */
export interface BadRequest {
  code: 30001;
  detail: string;
  topic?: string;
  id?: RequestId;
}

export function parseRequest(text: string): Request | Heart | WscMessage | BadRequest {
  // Before parsing: `data` and `payload` are serialised again for the backends (see json-depth.ts).
  if (nestsDeeperThan(text)) return { code: ErrorCode.BAD_REQUEST, detail: `bad data format: ${TOO_DEEP}` };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { code: ErrorCode.BAD_REQUEST, detail: 'bad data format: not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { code: ErrorCode.BAD_REQUEST, detail: 'bad data format: not a JSON object' };
  }
  const { code, topic, data, id, type, ack_id: ackId } = body as Record<string, unknown>;
  if (type === 'heart') {
    if (ackId === undefined) return { code: 'heart' };
    if (!isRequestId(ackId)) {
      return { code: ErrorCode.BAD_REQUEST, detail: `ack_id must be an integer or a string of at most ${MAX_ID_LENGTH} characters` };
    }
    return { code: 'heart', ackId };
  }
  if (code === undefined && isWscMessage(body as Record<string, unknown>)) return parseWsc(body as Record<string, unknown>);
  const echo: { topic?: string; id?: RequestId } = {};
  if (typeof topic === 'string') echo.topic = topic;
  if (id !== undefined) {
    if (!isRequestId(id)) {
      return { code: ErrorCode.BAD_REQUEST, detail: `id must be an integer or a string of at most ${MAX_ID_LENGTH} characters`, ...echo };
    }
    echo.id = id;
  }
  const bad = (detail: string): BadRequest => ({ code: ErrorCode.BAD_REQUEST, detail, ...echo });

  if (code === undefined) return bad('missing code');
  if (typeof code !== 'number') return bad('code must be a number');
  switch (code) {
    case RequestCode.SUBSCRIBE:
    case RequestCode.UNSUBSCRIBE:
    case RequestCode.SUBSCRIBE_PRIVATE:
    case RequestCode.UNSUBSCRIBE_PRIVATE: {
      if (topic === undefined) return bad('missing topic');
      if (typeof topic !== 'string') return bad('topic must be a string');
      const problem = topicProblem(topic);
      if (problem) return bad(problem);
      return { code, topic, ...echo };
    }
    case RequestCode.LOGIN:
      if (typeof data !== 'string' || data === '') return bad('data must be the login token, a non-empty string');
      return { code, token: data, ...echo };
    case RequestCode.LOGOUT:
      return { code, ...echo };
    case RequestCode.REQUEST: {
      if (echo.id === undefined) return bad('a request needs an id, echoed by the reply');
      if (topic !== undefined) {
        if (typeof topic !== 'string') return bad('topic must be a string');
        const problem = topicProblem(topic);
        if (problem) return bad(problem);
      }
      return { code, id: echo.id, ...echo, data: jsonBytes(data) };
    }
    default:
      return bad(`unknown code ${code}`);
  }
}

export interface Reply {
  code: number;
  message: string;
  detail?: string;
  topic?: string;
  id?: RequestId;
  cid?: string;
}

export function reply(code: number, echo: { topic?: string; id?: RequestId } = {}, detail?: string): Reply {
  const r: Reply = { code, message: MESSAGES[code] ?? '' };
  if (detail !== undefined) r.detail = detail;
  if (echo.topic !== undefined) r.topic = echo.topic;
  if (echo.id !== undefined) r.id = echo.id;
  return r;
}

const WSC_FIELDS = ['affair_id', 'ack_id', 'payload', 'to', 'type'];

/** A frame without `code` in ws-cluster's shape (heart frames are handled before). */
const isWscMessage = (body: Record<string, unknown>): boolean => WSC_FIELDS.some((f) => body[f] !== undefined);

function parseWsc(body: Record<string, unknown>): WscMessage | BadRequest {
  const { affair_id: affairId, ack_id: ackId, type, payload, to } = body;
  const m: WscMessage = { code: 'wsc', payload: jsonBytes(payload) };
  const bad = (detail: string): BadRequest => ({ code: ErrorCode.BAD_REQUEST, detail });
  if (ackId !== undefined) {
    if (!isRequestId(ackId)) return bad(`ack_id must be an integer or a string of at most ${MAX_ID_LENGTH} characters`);
    m.ackId = ackId;
  }
  if (affairId !== undefined) {
    if (!isRequestId(affairId)) return bad(`affair_id must be an integer or a string of at most ${MAX_ID_LENGTH} characters`);
    m.affairId = affairId;
  }
  if (type !== undefined) {
    if (typeof type !== 'string' || topicProblem(type) !== undefined) return bad('type must be a topic-like string');
    m.type = type;
  }
  if (to !== undefined) {
    const t = to as { cids?: unknown; uids?: unknown } | null;
    const list = (v: unknown): string[] | undefined =>
      v === undefined ? [] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
    const cids = typeof t === 'object' && t !== null ? list(t.cids) : undefined;
    const uids = typeof t === 'object' && t !== null ? list(t.uids) : undefined;
    if (cids === undefined || uids === undefined) return bad('to must be {"cids":[...],"uids":[...]} with string entries');
    m.to = { cids, uids };
  }
  return m;
}

/** A client's JSON value as the bytes a backend receives; nothing at all is empty. */
const jsonBytes = (v: unknown): Buffer => (v === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(v)));

const isRequestId = (v: unknown): v is RequestId =>
  (typeof v === 'string' && v.length <= MAX_ID_LENGTH) || (typeof v === 'number' && Number.isSafeInteger(v));

/** ws-cluster's ack: `{"ack_id":X,"code":0}`; a failure carries the error code and message. */
export function wscAck(ackId: RequestId, code = 0, detail?: string): string {
  return JSON.stringify(code === 0 ? { ack_id: ackId, code } : { ack_id: ackId, code, message: MESSAGES[code] ?? '', detail });
}

/** The reply to a heart frame, in ws-cluster's shape. */
export const heartReply = (ackId: RequestId | undefined, cid: string, now: number): string =>
  JSON.stringify({ type: 'heart', ack_id: ackId, payload: { pong: now, client_id: cid } });

/** gpush keepalive: the text "ping" in any case. */
export const isPing = (text: string): boolean => text.length === 4 && text.toLowerCase() === 'ping';
