import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { DEFAULT_GROUP, GROUP_PATTERN } from '../../core/auth/authenticator.js';
import type { ClientEvent as CoreEvent } from '../../core/backend/event.js';
import type { BackendRouter, Consumer } from '../../core/backend/router.js';
import { Code, PushwireError } from '../../core/errors.js';
import { ClientEventType, type BackendServiceServer, type ClientEvent, type ConnectRequest } from '../../../gen/pushwire/v1/backend.js';
import { serverStream, type StreamDeps } from './streams.js';

interface Deps extends StreamDeps {
  backends: BackendRouter;
}

/**
 * Bytes a consumer may leave unsent before its stream is ended with RESOURCE_EXHAUSTED: a
 * backend that stopped reading must not grow the node's memory without bound.
 */
export const MAX_UNSENT_BYTES = 16 * 1024 * 1024;
/** An event's size beyond its payload: ids, names and framing, roughly. */
const EVENT_OVERHEAD = 256;

const TYPES = {
  request: ClientEventType.CLIENT_EVENT_TYPE_REQUEST,
  connect: ClientEventType.CLIENT_EVENT_TYPE_CONNECT,
  disconnect: ClientEventType.CLIENT_EVENT_TYPE_DISCONNECT,
} as const;

const toProto = (e: CoreEvent): ClientEvent => ({
  type: TYPES[e.type],
  eventId: e.id,
  pid: e.pid,
  uid: e.uid,
  cid: e.cid,
  nodeId: e.node,
  timeMs: String(e.time),
  requestId: e.requestId ?? '',
  topic: e.topic ?? '',
  data: e.data ?? Buffer.alloc(0),
});

/**
 * A Connect stream as a consumer. grpc-js counts its write queue in messages, so the bytes
 * not yet handed to HTTP/2 are counted here.
 */
class StreamConsumer implements Consumer {
  private unsent = 0;
  private dead = false;

  constructor(
    readonly id: string,
    readonly pid: string,
    readonly group: string,
    private readonly call: ServerWritableStream<ConnectRequest, ClientEvent>,
    private readonly overflow: () => void,
    /** Gives an event it can no longer send to another consumer of the group. */
    private readonly handBack: (event: CoreEvent) => void,
  ) {}

  /** The stream is ending: events still routed here go elsewhere. */
  stop(): void {
    this.dead = true;
  }

  deliver(event: CoreEvent): void {
    if (this.dead) return this.handBack(event);
    const size = (event.data?.length ?? 0) + EVENT_OVERHEAD;
    if (this.unsent + size > MAX_UNSENT_BYTES) {
      this.dead = true;
      this.overflow();
      return this.handBack(event);
    }
    this.unsent += size;
    this.call.write(toProto(event), () => {
      this.unsent -= size;
    });
  }
}

/** pushwire.v1.BackendService: a Connect stream is one backend consumer until it ends. */
export function backendService(o: Deps): BackendServiceServer {
  return {
    connect: serverStream<ConnectRequest, ClientEvent>('Connect', 'Connect', o, async (call, keyPid, signal, end) => {
      const pid = o.projects.resolvePid(call.request.pid, keyPid);
      const group = call.request.group || DEFAULT_GROUP;
      if (!GROUP_PATTERN.test(group)) throw new PushwireError(Code.INVALID_ARGUMENT, 'group must be 1-64 of A-Z a-z 0-9 _ . -');
      const consumer = new StreamConsumer(
        o.backends.nextConsumerId(),
        pid,
        group,
        call,
        () => end(Code.RESOURCE_EXHAUSTED, `consumer fell behind by more than ${MAX_UNSENT_BYTES} bytes`),
        (event) => o.backends.handBack(event, group),
      );
      await o.backends.attach(consumer);
      try {
        // Response headers tell the backend it is registered: events flow from here on.
        if (!signal.aborted) call.sendMetadata(new Metadata());
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          else signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } finally {
        // Its share of later events goes to the group's other consumers.
        consumer.stop();
        await o.backends.detach(consumer);
      }
    }),
  };
}
