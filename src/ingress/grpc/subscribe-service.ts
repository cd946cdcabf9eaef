import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { MAX_HISTORY_READ } from '../../core/channels/options.js';
import { Code, invalidArgument } from '../../core/errors.js';
import type { Message, Outbound } from '../../core/message.js';
import type { PushNode } from '../../core/node.js';
import { PositionedSubscriptions, type PositionedSub } from '../../core/recovery.js';
import type { Session, Sink } from '../../core/session.js';
import { openSubscription } from '../../core/subscriptions.js';
import { privateChannel, topicChannel } from '../../core/targeting.js';
import type { StreamPosition } from '../../../gen/pushwire/v1/client.js';
import type { SubscribeRequest, SubscribeResponse, SubscribeServiceServer } from '../../../gen/pushwire/v1/subscribe.js';
import { subscribeResponse } from '../presence-messages.js';
import type { Deps } from './push-service.js';
import { aborted, serverStream, type StreamDeps } from './streams.js';

export interface SubscribeDeps extends Deps, StreamDeps {
  node: PushNode;
  /** Bytes a stream may have unsent before it is ended as too slow (--max-queue-bytes). */
  maxQueueBytes: number;
}

/** Per-message overhead counted on top of the payload (ids, names, framing). */
const MESSAGE_OVERHEAD = 128;

type Key = { topic: string; private: boolean };

/**
 * A gRPC stream as a hub session's sink. The bytes handed to grpc-js and not yet sent are
 * bounded: past the bound the stream is ended (RESOURCE_EXHAUSTED), as a slow WebSocket is.
 * Topics recovered with `since` deliver each offset once, in order (core/recovery.ts).
 */
class StreamSink implements Sink {
  private pending = 0;
  private dead = false;
  readonly positioned: PositionedSubscriptions<Key>;

  constructor(
    private readonly call: ServerWritableStream<SubscribeRequest, SubscribeResponse>,
    private readonly maxBytes: number,
    private readonly overflow: () => void,
    gap: (key: Key) => void,
  ) {
    this.positioned = new PositionedSubscriptions<Key>((sub) => gap(sub.key));
  }

  deliver(out: Outbound): void {
    if (this.dead) return;
    if (out.message.offset !== undefined && !this.positioned.admit(out.message)) return;
    this.write(out.encoded(subscribeResponse));
  }

  gap(channel: string): void {
    this.positioned.gap(channel);
  }

  /** A message outside the shared Outbound (recovered or buffered publications, recovery markers). */
  writeMessage(m: Message): void {
    if (!this.dead) this.write(subscribeResponse(m));
  }

  write(message: SubscribeResponse): void {
    const size = message.data.length + message.topic.length + message.uid.length + MESSAGE_OVERHEAD;
    if (this.pending + size > this.maxBytes) {
      this.dead = true;
      this.overflow();
      return;
    }
    this.pending += size;
    this.call.write(message, () => {
      this.pending -= size;
    });
  }
}

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

/** pushwire.v1.SubscribeService. */
export function subscribeService(o: SubscribeDeps): SubscribeServiceServer {
  return {
    subscribe: serverStream<SubscribeRequest, SubscribeResponse>('Subscribe', 'Subscribe', o, async (call, keyPid, signal, end) => {
      const { hub, history } = o.node;
      const r = call.request;
      const pid = o.projects.resolvePid(r.pid, keyPid);
      const sink = new StreamSink(
        call,
        o.maxQueueBytes,
        () => end(Code.RESOURCE_EXHAUSTED, `slow subscriber: more than ${o.maxQueueBytes} bytes unsent`),
        (key) => end(Code.ABORTED, `insufficient state on ${key.private ? 'private ' : ''}topic "${key.topic}": the node missed publications; subscribe again with since`),
      );
      // Recovering topics buffer live publications from the moment they are joined.
      const recoveries: Array<{ channel: string; key: Key; since: StreamPosition; sub: PositionedSub<Key> }> = [];
      for (const [map, priv, list] of [
        [r.since ?? {}, false, r.topics],
        [r.privateSince ?? {}, true, r.privateTopics],
      ] as const) {
        for (const [topic, since] of Object.entries(map)) {
          const field = priv ? 'private_since' : 'since';
          if (!list.includes(topic)) throw invalidArgument(`${field} names "${topic}", which is not in ${priv ? 'private_topics' : 'topics'}`);
          const channel = priv ? privateChannel(pid, r.uid, topic) : topicChannel(pid, topic);
          const key = { topic, private: priv };
          recoveries.push({ channel, key, since, sub: sink.positioned.begin(channel, key) });
        }
      }
      const req = { topics: r.topics, uid: r.uid, privateTopics: r.privateTopics };
      let session: Session;
      try {
        session = await openSubscription(hub, o.node.cids.next(), pid, req, sink);
      } catch (err) {
        sink.positioned.clear();
        throw err;
      }
      o.metrics.grpcSubscribers.inc();
      try {
        // Response headers tell the client every subscription is in place.
        if (!signal.aborted) call.sendMetadata(new Metadata());
        for (const { channel, key, since, sub } of recoveries) {
          const options = history.options(pid, key.private ? r.uid : '', key.topic);
          if (options.history === undefined || !options.recover) {
            sink.positioned.delete(channel);
            sink.write(marker({ topic: key.topic, private: key.private, recovered: false, epoch: '', offset: '0' }));
            continue;
          }
          const page = await history.read(channel, options.history, { since: { offset: Number(since.offset), epoch: since.epoch }, limit: MAX_HISTORY_READ, reverse: false });
          if (signal.aborted) break;
          o.metrics.recoveries.inc({ result: page.complete ? 'recovered' : 'not_recovered' });
          if (page.complete) for (const m of page.publications) sink.writeMessage(m);
          sink.write(marker({ topic: key.topic, private: key.private, recovered: page.complete, epoch: page.epoch, offset: String(page.offset) }));
          sink.positioned.settle(sub, page, (m) => sink.writeMessage(m));
        }
        await aborted(signal);
      } finally {
        hub.remove(session);
        o.metrics.grpcSubscribers.dec();
      }
    }),
  };
}
