import { Metadata, status, type ServerWritableStream } from '@grpc/grpc-js';
import { DEFAULT_GROUP, GROUP_PATTERN } from '../../core/auth/authenticator.js';
import type { ClientEvent as CoreEvent } from '../../core/backend/event.js';
import type { BackendRouter, Consumer } from '../../core/backend/router.js';
import { Code, PushwireError } from '../../core/errors.js';
import type { ProjectRegistry } from '../../core/projects/registry.js';
import type { Logger } from '../../observability/logger.js';
import { ClientEventType, type BackendServiceServer, type ClientEvent, type ConnectRequest } from '../../../gen/pushwire/v1/backend.js';
import { bearer } from './push-service.js';

interface Deps {
  backends: BackendRouter;
  projects: ProjectRegistry;
  logger: Logger;
}

/**
 * Bytes a consumer may leave unread before its stream is ended with RESOURCE_EXHAUSTED: a
 * backend that stopped reading must not grow the node's memory without bound.
 */
const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

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

/** pushwire.v1.BackendService: a Connect stream is one backend consumer. */
export function backendService(o: Deps): BackendServiceServer {
  return {
    connect(call: ServerWritableStream<ConnectRequest, ClientEvent>): void {
      let consumer: Consumer;
      let ended = false;
      const fail = (code: number, details: string): void => {
        if (ended) return;
        ended = true;
        call.emit('error', { code, details });
      };
      try {
        const keyPid = o.projects.authorize(bearer(call.metadata), 'Connect');
        const pid = o.projects.resolvePid(call.request.pid, keyPid);
        const group = call.request.group || DEFAULT_GROUP;
        if (!GROUP_PATTERN.test(group)) throw new PushwireError(Code.INVALID_ARGUMENT, 'group must be 1-64 of A-Z a-z 0-9 _ . -');
        consumer = {
          id: o.backends.nextConsumerId(),
          pid,
          group,
          deliver(event) {
            if (ended) return;
            if (call.writableLength > MAX_UNREAD_BYTES) {
              void o.backends.detach(consumer);
              return fail(status.RESOURCE_EXHAUSTED, `consumer fell behind by more than ${MAX_UNREAD_BYTES} bytes`);
            }
            call.write(toProto(event));
          },
        };
      } catch (err) {
        const known = err instanceof PushwireError;
        if (!known) o.logger.error({ err }, 'BackendService.Connect failed');
        return fail(known ? err.code : status.INTERNAL, known ? err.message : 'internal error');
      }
      const leave = (): void => {
        ended = true;
        void o.backends.detach(consumer);
      };
      call.on('cancelled', leave);
      call.on('close', leave);
      o.backends.attach(consumer).then(
        () => {
          if (ended || call.cancelled) return void o.backends.detach(consumer);
          // Headers now tell the backend it is registered: events flow from here on.
          call.sendMetadata(new Metadata());
        },
        (err: unknown) => fail(status.UNAVAILABLE, (err as Error).message),
      );
    },
  };
}
