/** What a backend consumer hears about a client connection. */
export type ClientEventType = 'request' | 'connect' | 'disconnect';

export interface ClientEvent {
  type: ClientEventType;
  /** Cluster-unique id of this event. */
  id: string;
  pid: string;
  /** The client's uid; empty when it had not logged in. */
  uid: string;
  cid: string;
  /** The node holding the client connection. */
  node: string;
  /** Wall-clock ms when the client's node emitted the event. */
  time: number;
  /** Requests: the client's request id, to be echoed by the reply (`reply_to`). */
  requestId?: string;
  /** Requests: an optional route name given by the client (gpush `topic`, ws-cluster `type`). */
  topic?: string;
  /** Requests: the client's payload (JSON text as the client sent it). */
  data?: Buffer;
  /** Set when a node re-dispatched the event because its consumer had just left. */
  redispatched?: boolean;
}

/** Events cross the bus as JSON (requests are not the fan-out hot path); data as base64. */
export function encodeEvent(e: ClientEvent): Buffer {
  return Buffer.from(JSON.stringify({ ...e, data: e.data?.toString('base64') }));
}

export function decodeEvent(buf: Buffer): ClientEvent {
  const raw = JSON.parse(buf.toString('utf8')) as Omit<ClientEvent, 'data'> & { data?: string };
  if (raw === null || typeof raw !== 'object' || !['request', 'connect', 'disconnect'].includes(raw.type)) {
    throw new Error('not a client event');
  }
  const { data, ...rest } = raw;
  return data === undefined ? rest : { ...rest, data: Buffer.from(data, 'base64') };
}

/** 32-bit FNV-1a: picks a connection's consumer, so one client's events go to one consumer. */
export function stickyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
