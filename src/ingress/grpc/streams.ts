import { status, type ServerWritableStream } from '@grpc/grpc-js';
import { Code, PushwireError } from '../../core/errors.js';
import type { ApiMethod, ProjectRegistry } from '../../core/projects/registry.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { bearer } from './push-service.js';
import { decodeFailure } from './tolerant-decode.js';

export interface StreamDeps {
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Open streams, so shutdown can end them (UNAVAILABLE) instead of waiting on them. */
  streams: Set<AbortController>;
}

/** Why a stream was aborted by the server: the status the client gets. */
export class StreamEnd extends Error {
  override name = 'StreamEnd';

  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Wraps a use case as a grpc-js server-streaming handler: the API key is checked for `api`,
 * `work` runs until it resolves (OK) or rejects (its PushwireError code, else INTERNAL); the
 * signal aborts when the client cancels, or when the server ends the stream with `end` (or
 * at shutdown), and that status is sent once `work` resolves.
 */
export function serverStream<Req, Res>(
  method: string,
  api: ApiMethod,
  o: StreamDeps,
  work: (
    call: ServerWritableStream<Req, Res>,
    keyPid: string | undefined,
    signal: AbortSignal,
    end: (code: Code, message: string) => void,
  ) => Promise<void>,
) {
  return (call: ServerWritableStream<Req, Res>): void => {
    const started = performance.now();
    const abort = new AbortController();
    o.streams.add(abort);
    call.on('cancelled', () => abort.abort(new StreamEnd(Code.CANCELLED, 'cancelled')));
    const end = (code: Code, message: string): void => abort.abort(new StreamEnd(code, message));
    new Promise<void>((resolve) => {
      const undecodable = decodeFailure(call.request);
      if (undecodable !== undefined) throw undecodable;
      resolve(work(call, o.projects.authorize(bearer(call.metadata), api), abort.signal, end));
    })
      .then(() => {
        const reason: unknown = abort.signal.reason;
        if (reason instanceof StreamEnd && reason.code !== Code.CANCELLED) throw new PushwireError(reason.code, reason.message);
        return Code.OK;
      })
      .then(
        (code) => {
          if (!call.cancelled) call.end();
          return code;
        },
        (err: unknown) => {
          const known = err instanceof PushwireError;
          if (!known) o.logger.error({ err, method }, 'gRPC stream failed');
          const code = known ? err.code : status.INTERNAL;
          if (!call.cancelled) call.emit('error', { code, details: known ? err.message : 'internal error' });
          return code;
        },
      )
      .then((code) => {
        o.streams.delete(abort);
        abort.abort(new StreamEnd(Code.CANCELLED, 'done'));
        o.metrics.grpcDuration.observe({ method, code: call.cancelled ? 'CANCELLED' : status[code] }, (performance.now() - started) / 1000);
      });
  };
}

/** Writes one message; resolves when the stream can take more (or is gone). */
export function send<Res>(call: ServerWritableStream<unknown, Res>, signal: AbortSignal, message: Res): Promise<void> {
  if (signal.aborted || call.write(message)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Resolves when the signal aborts. */
export const aborted = (signal: AbortSignal): Promise<void> =>
  signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
