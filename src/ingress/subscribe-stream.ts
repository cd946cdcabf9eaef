import { MAX_HISTORY_READ } from '../core/channels/options.js';
import { invalidArgument } from '../core/errors.js';
import type { Message, Outbound } from '../core/message.js';
import type { PushNode } from '../core/node.js';
import { PositionedSubscriptions, type PositionedSub } from '../core/recovery.js';
import type { Sink } from '../core/session.js';
import { privateChannel, topicChannel } from '../core/targeting.js';
import type { Metrics } from '../observability/metrics.js';
import type { StreamPosition } from '../../gen/pushwire/v1/client.js';
import type { SubscribeResponse } from '../../gen/pushwire/v1/subscribe.js';
import { subscribeResponse } from './presence-messages.js';

/** A recovering topic as the stream names it. */
export type SubscribeKey = { topic: string; private: boolean };

/** The fields of a SubscribeRequest that recovery reads (gRPC and the REST bridge decode them alike). */
export interface SinceRequest {
  uid: string;
  topics: readonly string[];
  privateTopics: readonly string[];
  since: Readonly<Record<string, StreamPosition>>;
  privateSince: Readonly<Record<string, StreamPosition>>;
}

/**
 * A SubscribeService stream (gRPC or REST NDJSON) as a hub session's sink: `write` is the
 * transport's (with its own bound on unsent bytes); topics recovered with `since` deliver each
 * offset once, in order (core/recovery.ts), and `onGap` ends the stream when one cannot.
 */
export class SubscribeSink implements Sink {
  readonly positioned: PositionedSubscriptions<SubscribeKey>;

  constructor(
    readonly write: (message: SubscribeResponse) => void,
    onGap: (key: SubscribeKey) => void,
  ) {
    this.positioned = new PositionedSubscriptions<SubscribeKey>((sub) => onGap(sub.key));
  }

  deliver(out: Outbound): void {
    if (out.message.offset !== undefined && !this.positioned.admit(out.message)) return;
    this.write(out.encoded(subscribeResponse));
  }

  gap(channel: string): void {
    this.positioned.gap(channel);
  }

  /** A message outside the shared Outbound (recovered or buffered publications). */
  writeMessage(m: Message): void {
    this.write(subscribeResponse(m));
  }
}

/** The message ending a stream whose node missed publications of a recovered topic (ABORTED). */
export const gapMessage = (key: SubscribeKey): string =>
  `insufficient state on ${key.private ? 'private ' : ''}topic "${key.topic}": the node missed publications; subscribe again with since`;

/** A recovery marker response: nothing but `recovery`. */
const marker = (recovery: NonNullable<SubscribeResponse['recovery']>): SubscribeResponse => ({
  topic: '',
  uid: '',
  data: Buffer.alloc(0),
  messageId: '',
  timeMs: '0',
  offset: '0',
  epoch: '',
  recovery,
});

export interface Recovery {
  channel: string;
  key: SubscribeKey;
  since: StreamPosition;
  sub: PositionedSub<SubscribeKey>;
}

/**
 * Checks `since`/`private_since` (each names one of its list's topics; INVALID_ARGUMENT) and
 * starts buffering live publications of those topics: call before the session joins the hub,
 * so nothing published between the join and the history read is lost.
 */
export function beginRecoveries(sink: SubscribeSink, pid: string, r: SinceRequest): Recovery[] {
  const recoveries: Recovery[] = [];
  for (const [map, priv, list] of [
    [r.since, false, r.topics],
    [r.privateSince, true, r.privateTopics],
  ] as const) {
    for (const [topic, since] of Object.entries(map)) {
      const field = priv ? 'private_since' : 'since';
      if (!list.includes(topic)) {
        sink.positioned.clear();
        throw invalidArgument(`${field} names "${topic}", which is not in ${priv ? 'private_topics' : 'topics'}`);
      }
      const channel = priv ? privateChannel(pid, r.uid, topic) : topicChannel(pid, topic);
      const key = { topic, private: priv };
      recoveries.push({ channel, key, since, sub: sink.positioned.begin(channel, key) });
    }
  }
  return recoveries;
}

/**
 * Once the session is in the hub: per recovering topic, the missed publications (when history
 * still holds them all), then its recovery marker, then the publications buffered meanwhile.
 */
export async function runRecoveries(
  node: PushNode,
  metrics: Metrics,
  sink: SubscribeSink,
  pid: string,
  uid: string,
  recoveries: readonly Recovery[],
  signal: AbortSignal,
): Promise<void> {
  for (const { channel, key, since, sub } of recoveries) {
    const options = node.history.options(pid, key.private ? uid : '', key.topic);
    if (options.history === undefined || !options.recover) {
      sink.positioned.delete(channel);
      sink.write(marker({ topic: key.topic, private: key.private, recovered: false, epoch: '', offset: '0' }));
      continue;
    }
    const page = await node.history.read(channel, options.history, { since: { offset: Number(since.offset), epoch: since.epoch }, limit: MAX_HISTORY_READ, reverse: false });
    if (signal.aborted) return;
    metrics.recoveries.inc({ result: page.complete ? 'recovered' : 'not_recovered' });
    if (page.complete) for (const m of page.publications) sink.writeMessage(m);
    sink.write(marker({ topic: key.topic, private: key.private, recovered: page.complete, epoch: page.epoch, offset: String(page.offset) }));
    sink.positioned.settle(sub, page, (m) => sink.writeMessage(m));
  }
}
