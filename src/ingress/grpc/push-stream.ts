import { status } from '@grpc/grpc-js';
import { Code, PushwireError } from '../../core/errors.js';
import type { PushResult } from '../../core/publisher.js';
import { PushStreamResponse, type PushDataRequest } from '../../../gen/pushwire/v1/push.js';
import { bearer, encodePushDataResponse, type Deps, type MetadataLike } from './push-service.js';
import { StreamEnd, type StreamDeps } from './streams.js';
import { decodeFailure } from './tolerant-decode.js';

/** Pushes a stream may have unanswered; past it the server stops reading the stream. */
export const MAX_UNANSWERED = 1024;
/**
 * Answers handed to grpc-js and not yet written out; past it the server stops reading too. Counted
 * by write callbacks, not by write()'s return value: grpc-js's objectMode buffer says "full" at 16,
 * and pausing there turns a fast stream into stop-and-go.
 */
export const MAX_UNWRITTEN = 1024;

/**
 * What the handler uses of its call: grpc-js's ServerDuplexStream, or the node:http2 fast path's
 * call (grpc-fast-calls.ts), which implements just this.
 */
export interface PushStreamCall {
  readonly metadata: MetadataLike;
  readonly cancelled: boolean;
  /** 'data' (a PushDataRequest, or an Undecodable one), 'end' (half-close), 'cancelled', 'error'. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter's own listener type
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** emit('error', { code, details }) ends the call with that status once written answers are out. */
  emit(event: string, ...args: unknown[]): boolean;
  write(answer: PushStreamResponse, written: () => void): boolean;
  /** Ends the call OK once written answers are out. */
  end(): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
}

type Call = PushStreamCall;

/**
 * PushStreamResponse's wire bytes. A success without history fields is PushDataResponse's
 * fields 1-3, written by the same hand-written encoder (one per push, so it matters); anything
 * else goes through the generated encoder.
 */
export function encodePushStreamResponse(m: PushStreamResponse): Buffer {
  if (m.error === undefined && (m.offset === '0' || m.offset === '') && m.epoch === '') return encodePushDataResponse(m);
  return Buffer.from(PushStreamResponse.encode(m).finish());
}

/** What a push's promise settled to, as the answer on the stream. */
function answerOf(nodeId: string, r: PushResult): PushStreamResponse {
  const extra = r as PushResult & { offset?: string | number; epoch?: string };
  return {
    messageId: r.messageId,
    nodeId: r.nodeId ?? nodeId,
    duplicate: r.duplicate,
    offset: extra.offset === undefined ? '0' : String(extra.offset),
    epoch: extra.epoch ?? '',
  };
}

/**
 * pushwire.v1.PushService/PushStream: every request goes through Publisher.push exactly as a
 * PushData call does, and is answered in request order. Answers are written as soon as the
 * oldest unanswered push settles. Memory per stream is bounded: at MAX_UNANSWERED pushes in
 * flight, or MAX_UNWRITTEN answers the client has not taken, the stream is paused, which
 * stops grpc-js reading it, which lets HTTP/2 flow control stop the client.
 */
export function pushStreamHandler(o: Deps & StreamDeps, nodeId: string) {
  const failureOf = (err: unknown): PushStreamResponse => {
    const known = err instanceof PushwireError;
    if (!known) o.logger.error({ err, method: 'PushStream' }, 'push on a stream failed');
    return {
      messageId: '',
      nodeId,
      duplicate: false,
      offset: '0',
      epoch: '',
      error: { code: known ? err.code : Code.INTERNAL, message: known ? err.message : 'internal error', details: [] },
    };
  };

  return (call: Call): void => {
    const started = performance.now();
    let keyPid: string | undefined;
    try {
      keyPid = o.projects.authorize(bearer(call.metadata), 'PushData');
    } catch (err) {
      const known = err instanceof PushwireError;
      const code = known ? err.code : Code.INTERNAL;
      o.metrics.grpcDuration.observe({ method: 'PushStream', code: status[code] }, (performance.now() - started) / 1000);
      call.emit('error', { code, details: known ? err.message : 'internal error' });
      return;
    }

    const abort = new AbortController();
    o.streams.add(abort);
    // Answers in request order: a slot per request (request n at slots[n - base]), filled when
    // its push settles; written from `head` on while the oldest is filled.
    let slots: Array<PushStreamResponse | undefined> = [];
    let base = 0;
    let head = 0;
    let received = 0;
    let unanswered = 0;
    let unwritten = 0;
    let halfClosed = false;
    let finished = false;
    /** Set at shutdown: read nothing more, answer what is in flight, then end with this. */
    let closing: StreamEnd | undefined;

    const finish = (code: Code, details: string): void => {
      if (finished) return;
      finished = true;
      o.streams.delete(abort);
      o.metrics.grpcDuration.observe({ method: 'PushStream', code: call.cancelled ? 'CANCELLED' : status[code] }, (performance.now() - started) / 1000);
      if (call.cancelled) return;
      if (code === Code.OK) call.end();
      else call.emit('error', { code, details });
    };
    const flow = (): void => {
      const stop = unanswered >= MAX_UNANSWERED || unwritten >= MAX_UNWRITTEN || closing !== undefined;
      if (stop && !call.isPaused()) call.pause();
      else if (!stop && call.isPaused() && !halfClosed) call.resume();
    };
    const written = (): void => {
      unwritten--;
      if (unwritten === MAX_UNWRITTEN - 1) flow();
    };
    const pump = (): void => {
      if (finished) return;
      while (head < slots.length && slots[head] !== undefined) {
        const answer = slots[head]!;
        slots[head++] = undefined;
        unanswered--;
        unwritten++;
        call.write(answer, written);
      }
      // Written slots are dropped now and then, so the array stays as long as what is in flight.
      if (head === slots.length || head >= MAX_UNANSWERED) {
        slots = slots.slice(head);
        base += head;
        head = 0;
      }
      flow();
      if (unanswered === 0 && closing !== undefined) finish(closing.code, closing.message);
      else if (halfClosed && unanswered === 0) finish(Code.OK, '');
    };

    call.on('data', (req: PushDataRequest) => {
      if (finished) return;
      const n = received++;
      slots.push(undefined);
      unanswered++;
      const settle = (answer: PushStreamResponse): void => {
        slots[n - base] = answer;
        pump();
      };
      let pending: Promise<PushResult>;
      try {
        if (closing !== undefined) throw new PushwireError(closing.code, closing.message);
        // A message that did not decode is answered INVALID_ARGUMENT in its slot; the stream goes on.
        const undecodable = decodeFailure(req);
        if (undecodable !== undefined) throw undecodable;
        pending = o.publisher.push(req, 'grpc_stream', keyPid);
      } catch (err) {
        settle(failureOf(err));
        return;
      }
      pending.then(
        (r) => settle(answerOf(nodeId, r)),
        (err: unknown) => settle(failureOf(err)),
      );
      flow();
    });
    call.on('end', () => {
      halfClosed = true;
      if (unanswered === 0) finish(Code.OK, '');
    });
    call.on('error', () => {});
    call.on('cancelled', () => finish(Code.CANCELLED, 'cancelled'));
    abort.signal.addEventListener('abort', () => {
      const reason: unknown = abort.signal.reason;
      closing = reason instanceof StreamEnd ? reason : new StreamEnd(Code.UNAVAILABLE, 'stream ended by the server');
      pump();
    });
  };
}
