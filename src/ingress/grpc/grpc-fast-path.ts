import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { status as Status, type Server } from '@grpc/grpc-js';
import type { Metrics } from '../../observability/metrics.js';
import { FastPushStreamCall, refuseCall, serveUnary, type UnaryMethod } from './grpc-fast-calls.js';
import { invalidTimeoutMessage, timeoutHeader, timeoutMs } from './grpc-timeout.js';
import { takeStreamsFrom } from './grpc-js-streams.js';
import type { PushStreamResponse } from '../../../gen/pushwire/v1/push.js';
import type { PushStreamCall } from './push-stream.js';

export interface FastPathMethods<Req, Res> {
  /** PushService/PushData: the handler grpc-js serves it with, and its (de)serializers. */
  pushData: UnaryMethod<Req, Res>;
  /** PushService/PushStream likewise. */
  pushStream: {
    path: string;
    deserialize: (bytes: Buffer) => unknown;
    serialize: (value: PushStreamResponse) => Buffer;
    handler: (call: PushStreamCall) => void;
  };
  /** grpc-js's grpc.max_receive_message_length: longer messages end the call RESOURCE_EXHAUSTED. */
  maxMessage: number;
  metrics: Metrics;
}

/**
 * Whether the fast path answers this call exactly as grpc-js would by construction: its two
 * methods, content-type application/grpc(+proto) and no grpc-encoding other than identity (grpc-js
 * inflates). Anything else is grpc-js's. A grpc-timeout (deadline) is run here as grpc-js runs it.
 */
function isPlain(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  if (type !== 'application/grpc' && type !== 'application/grpc+proto') return false;
  const encoding = headers['grpc-encoding'];
  return encoding === undefined || encoding === 'identity';
}

/**
 * PushService.PushData and PushStream served from node:http2 on grpc-js's own port: the same
 * handlers as grpc-js runs (push-service.ts, push-stream.ts: auth, validation, idempotency,
 * metrics), without grpc-js's per-call and per-message machinery (call objects, interceptors,
 * an objectMode Duplex, one write per answer). grpc-js keeps everything else. Call after the
 * server is bound.
 */
export function installFastPath<Req, Res>(server: Server, m: FastPathMethods<Req, Res>): void {
  const { pushData, pushStream, maxMessage } = m;
  const counts = m.metrics.grpcFastPathCounts;
  takeStreamsFrom(server, (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean => {
    const path = headers[':path'];
    if (path !== pushStream.path && path !== pushData.path) return false;
    if (!isPlain(headers)) return false;
    const timeout = timeoutHeader(headers);
    const deadlineMs = timeout === undefined ? undefined : timeoutMs(timeout);
    const malformed = timeout !== undefined && deadlineMs === undefined;
    if (path === pushStream.path) {
      counts.PushStream++;
      const call = new FastPushStreamCall(stream, headers, pushStream.deserialize, pushStream.serialize, maxMessage, deadlineMs);
      // grpc-js queues this status before the handler runs, so a handler that ends the call at
      // once (a missing API key) is answered with its own status instead.
      if (malformed) call.failSoon(Status.INTERNAL, invalidTimeoutMessage(timeout));
      try {
        pushStream.handler(call);
      } catch {
        call.emit('error', { code: Status.UNKNOWN, details: 'Unknown error' });
      }
      return true;
    }
    counts.PushData++;
    // grpc-js's handler would only run at the half-close, after this status.
    if (malformed) refuseCall(stream, Status.INTERNAL, invalidTimeoutMessage(timeout));
    else serveUnary(pushData, stream, headers, maxMessage, deadlineMs);
    return true;
  });
}
