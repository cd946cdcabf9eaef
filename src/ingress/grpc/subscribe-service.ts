import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { Code } from '../../core/errors.js';
import type { Outbound } from '../../core/message.js';
import type { PushNode } from '../../core/node.js';
import type { Sink } from '../../core/session.js';
import { openSubscription } from '../../core/subscriptions.js';
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

/**
 * A gRPC stream as a hub session's sink. The bytes handed to grpc-js and not yet sent are
 * bounded: past the bound the stream is ended (RESOURCE_EXHAUSTED), as a slow WebSocket is.
 */
class StreamSink implements Sink {
  private pending = 0;
  private dead = false;

  constructor(
    private readonly call: ServerWritableStream<SubscribeRequest, SubscribeResponse>,
    private readonly maxBytes: number,
    private readonly overflow: () => void,
  ) {}

  deliver(out: Outbound): void {
    if (this.dead) return;
    const message = out.encoded(subscribeResponse);
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

/** pushwire.v1.SubscribeService. */
export function subscribeService(o: SubscribeDeps): SubscribeServiceServer {
  return {
    subscribe: serverStream<SubscribeRequest, SubscribeResponse>('Subscribe', 'Subscribe', o, async (call, keyPid, signal, end) => {
      const { hub } = o.node;
      const pid = o.projects.resolvePid(call.request.pid, keyPid);
      const sink = new StreamSink(call, o.maxQueueBytes, () =>
        end(Code.RESOURCE_EXHAUSTED, `slow subscriber: more than ${o.maxQueueBytes} bytes unsent`),
      );
      const req = { topics: call.request.topics, uid: call.request.uid, privateTopics: call.request.privateTopics };
      const session = await openSubscription(hub, o.node.cids.next(), pid, req, sink);
      o.metrics.grpcSubscribers.inc();
      try {
        // Response headers tell the client every subscription is in place.
        if (!signal.aborted) call.sendMetadata(new Metadata());
        await aborted(signal);
      } finally {
        hub.remove(session);
        o.metrics.grpcSubscribers.dec();
      }
    }),
  };
}
