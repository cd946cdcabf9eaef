import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

/** Takes a stream (true) or leaves it to grpc-js (false). */
export type StreamTaker = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/**
 * The one place that relies on grpc-js internals (checked against @grpc/grpc-js 1.14): a bound
 * grpc-js Server keeps its node:http2 servers as the keys of the private Map `http2Servers`, and
 * serves calls from their 'stream' listener. After `bindAsync` has called back, this puts `take`
 * in front of those listeners on every bound server: a stream it takes is never seen by grpc-js,
 * any other goes to grpc-js's listeners unchanged. grpc-js keeps the port, its sessions (so
 * tryShutdown/forceShutdown end fast-path streams too), keepalive and every other service. A
 * taken stream is still counted by grpc-js's private `onStreamOpened`, as its own are, so an idle
 * timeout (grpc.max_connection_idle_ms) never closes a session with a fast-path stream open.
 *
 * Throws when grpc-js no longer looks like this, so a grpc-js upgrade fails the node's start
 * (and test/integration/grpc-fast-path.test.ts) instead of silently losing the fast path.
 */
export function takeStreamsFrom(server: Server, take: StreamTaker): void {
  const internals = server as unknown as { http2Servers?: unknown; onStreamOpened?: unknown };
  const servers = internals.http2Servers;
  const opened = internals.onStreamOpened;
  if (typeof opened !== 'function') throw new Error('grpc fast path: @grpc/grpc-js Server has no onStreamOpened (grpc-js internals changed; run with --grpc-fast-path false)');
  if (!(servers instanceof Map) || servers.size === 0) {
    throw new Error('grpc fast path: @grpc/grpc-js Server has no bound http2Servers map (grpc-js internals changed; run with --grpc-fast-path false)');
  }
  for (const h2 of servers.keys() as IterableIterator<Http2Server>) {
    if (typeof h2?.listeners !== 'function') throw new Error('grpc fast path: an http2Servers key is not an http2 server (grpc-js internals changed)');
    const grpcListeners = h2.listeners('stream') as Array<(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => void>;
    if (grpcListeners.length !== 1) throw new Error(`grpc fast path: expected grpc-js's one 'stream' listener, found ${grpcListeners.length}`);
    const grpcListener = grpcListeners[0]!;
    h2.removeListener('stream', grpcListener);
    h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) => {
      if (take(stream, headers)) (opened as (s: ServerHttp2Stream) => void).call(server, stream);
      else grpcListener(stream, headers, flags, raw);
    });
  }
}
