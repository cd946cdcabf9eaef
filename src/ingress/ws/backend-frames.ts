import type { ClientEvent } from '../../core/backend/event.js';
import { ReplyCode, type RequestId } from './codec.js';

/** How a client asked: gpush code 7 (`id`) or ws-cluster's message frame (`affair_id`). */
export type Dialect = 'gpush' | 'wsc';

/** The request ids a connection's replies may echo, with the type and dialect they came in. */
export class PendingRequests {
  private readonly ids = new Map<string, { id: RequestId; dialect: Dialect }>();

  constructor(private readonly max = 1024) {}

  remember(id: RequestId, dialect: Dialect): void {
    const key = String(id);
    this.ids.delete(key);
    this.ids.set(key, { id, dialect });
    // A backend may answer a request several times (or never): the oldest ids are forgotten.
    if (this.ids.size > this.max) this.ids.delete(this.ids.keys().next().value!);
  }

  /** A reply to an id this connection never sent (or forgot) still arrives, as a gpush reply. */
  static lookup(pending: PendingRequests | undefined, replyTo: string): { id: RequestId; dialect: Dialect } {
    return pending?.ids.get(replyTo) ?? { id: replyTo, dialect: 'gpush' };
  }
}

/**
 * Bytes as a JSON value: a payload that is JSON text is embedded as is (clients send JSON and
 * backends usually answer JSON), anything else becomes a JSON string; nothing becomes null.
 */
export function jsonValue(data: Buffer): string {
  if (data.length === 0) return 'null';
  const text = data.toString('utf8');
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}

/** A backend's answer as the client expects it: code 20006 echoing `id`, or ws-cluster's shape. */
export function replyFrame(to: { id: RequestId; dialect: Dialect }, data: Buffer): string {
  const id = JSON.stringify(to.id);
  return to.dialect === 'wsc'
    ? `{"affair_id":${id},"payload":${jsonValue(data)}}`
    : `{"code":${ReplyCode.REPLY},"message":"reply","id":${id},"data":${jsonValue(data)}}`;
}

/**
 * A client event as a server connection receives it, in ws-cluster's shape:
 * `{"type":"request","affair_id":..,"source":{pid,uid,cid,node},"payload":..,...}`.
 */
export function serverEventFrame(e: ClientEvent): string {
  const frame: Record<string, unknown> = {
    type: e.type,
    event_id: e.id,
    source: { pid: e.pid, uid: e.uid, cid: e.cid, node: e.node },
    time: e.time,
  };
  if (e.type !== 'request') return JSON.stringify(frame);
  frame.affair_id = e.requestId ?? '';
  if (e.topic !== undefined) frame.topic = e.topic;
  const head = JSON.stringify(frame);
  return `${head.slice(0, -1)},"payload":${jsonValue(e.data ?? Buffer.alloc(0))}}`;
}
