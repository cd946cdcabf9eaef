import WebSocket from 'ws';
import { Client, type ClientOptions, type Publication, type SubscribedEvent, type Subscription, type WebSocketConstructor } from '../../client/src/index.js';
import { b64, restPush } from './grpc-client.js';
import { waitFor } from './ports.js';

/** An SDK client over the `ws` package (Node 20 has no global WebSocket), with short back-off for tests. */
export function sdkClient(url: string, options: ClientOptions = {}): Client {
  return new Client(url, {
    websocket: WebSocket as unknown as WebSocketConstructor,
    offlineHint: false,
    minReconnectDelay: 50,
    maxReconnectDelay: 500,
    ...options,
  });
}

/** Records what a subscription delivers. */
export class Received<T = unknown> {
  readonly pubs: Array<Publication<T>> = [];
  readonly subscribed: SubscribedEvent[] = [];
  readonly errors: string[] = [];

  constructor(readonly sub: Subscription<T>) {
    sub.on('publication', (p) => this.pubs.push(p));
    sub.on('subscribed', (e) => this.subscribed.push(e));
    sub.on('error', (e) => this.errors.push(e.error.message));
  }

  offsets(): number[] {
    return this.pubs.map((p) => p.offset ?? 0);
  }

  data(): T[] {
    return this.pubs.map((p) => p.data);
  }

  async count(n: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.pubs.length >= n, timeoutMs, `${n} publications on ${this.sub.channel} (have ${this.pubs.length})`);
  }
}

/** Pushes a JSON value to a topic over REST; resolves with the node's answer (messageId, offset, epoch). */
export async function pushJson(httpUrl: string, topic: string, value: unknown, extra: Record<string, unknown> = {}): Promise<any> {
  const res = await restPush(httpUrl, { topic, data: b64(JSON.stringify(value)), ...extra });
  if (res.status !== 200) throw new Error(`push to ${topic}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

/** 1..n */
export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Channel options with history and recovery for every channel of the default project. */
export const HISTORY_CHANNELS = JSON.stringify({ history: { size: 1000, ttl: '10m' } });
