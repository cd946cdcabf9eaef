import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { Code } from '../../core/errors.js';
import type { PushNode } from '../../core/node.js';
import type { Session } from '../../core/session.js';
import { openSubscription } from '../../core/subscriptions.js';
import type { SubscribeRequest, SubscribeResponse, SubscribeServiceServer } from '../../../gen/pushwire/v1/subscribe.js';
import { beginRecoveries, gapMessage, runRecoveries, SubscribeSink } from '../subscribe-stream.js';
import type { Deps } from './push-service.js';
import { aborted, serverStream, type StreamDeps } from './streams.js';

export interface SubscribeDeps extends Deps, StreamDeps {
  node: PushNode;
  /** Bytes a stream may have unsent before it is ended as too slow (--max-queue-bytes). */
  maxQueueBytes: number;
}

/** Per-message overhead counted on top of the payload (ids, names, framing). */
const MESSAGE_OVERHEAD = 128;

/**
 * Writes to a gRPC stream with the bytes handed to grpc-js and not yet sent bounded: past the
 * bound the stream is ended (`overflow`, RESOURCE_EXHAUSTED), as a slow WebSocket is.
 */
function boundedWriter(call: ServerWritableStream<SubscribeRequest, SubscribeResponse>, maxBytes: number, overflow: () => void): (m: SubscribeResponse) => void {
  let pending = 0;
  let dead = false;
  return (message) => {
    if (dead) return;
    const size = message.data.length + message.topic.length + message.uid.length + MESSAGE_OVERHEAD;
    if (pending + size > maxBytes) {
      dead = true;
      overflow();
      return;
    }
    pending += size;
    call.write(message, () => {
      pending -= size;
    });
  };
}

/** pushwire.v1.SubscribeService. */
export function subscribeService(o: SubscribeDeps): SubscribeServiceServer {
  return {
    subscribe: serverStream<SubscribeRequest, SubscribeResponse>('Subscribe', 'Subscribe', o, async (call, keyPid, signal, end) => {
      const { hub } = o.node;
      const r = call.request;
      const pid = o.projects.resolvePid(r.pid, keyPid);
      const write = boundedWriter(call, o.maxQueueBytes, () => end(Code.RESOURCE_EXHAUSTED, `slow subscriber: more than ${o.maxQueueBytes} bytes unsent`));
      const sink = new SubscribeSink(write, (key) => end(Code.ABORTED, gapMessage(key)));
      // Recovering topics buffer live publications from the moment they are joined.
      const since = { uid: r.uid, topics: r.topics, privateTopics: r.privateTopics, since: r.since ?? {}, privateSince: r.privateSince ?? {} };
      const recoveries = beginRecoveries(sink, pid, since);
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
        await runRecoveries(o.node, o.metrics, sink, pid, r.uid, recoveries, signal);
        await aborted(signal);
      } finally {
        hub.remove(session);
        o.metrics.grpcSubscribers.dec();
      }
    }),
  };
}
