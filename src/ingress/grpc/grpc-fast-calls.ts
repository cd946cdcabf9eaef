import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { status as Status } from '@grpc/grpc-js';
import type { PushStreamResponse } from '../../../gen/pushwire/v1/push.js';
import type { PushStreamCall } from './push-stream.js';
import type { MetadataLike } from './push-service.js';
import { MessageReader, MessageTooLarge, framed } from './grpc-messages.js';
import { DEADLINE_EXCEEDED_MESSAGE } from './grpc-timeout.js';

/**
 * The gRPC side of one HTTP/2 stream on the fast path, answering as grpc-js 1.14 does
 * (server-interceptors.js): the same response headers, `grpc-message` percent-encoded with
 * encodeURI, a trailers-only response when the call fails before its first message, and a
 * drained request once the status is sent.
 */

/** grpc-js's response headers (it advertises these encodings though it never compresses a response). */
const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};

// grpc-js's Metadata drops non-binary values with characters outside printable ASCII.
const LEGAL_VALUE = /^[ -~]*$/;

/** The request headers as grpc-js's Metadata.fromHttp2Headers would show them to a handler. */
export function headerMetadata(headers: IncomingHttpHeaders): MetadataLike {
  return {
    get(key: string): unknown[] {
      const value = key.startsWith(':') ? undefined : headers[key.toLowerCase()];
      if (value === undefined) return [];
      const values = Array.isArray(value) ? value : [value];
      if (!key.endsWith('-bin')) return values.filter((v) => LEGAL_VALUE.test(v));
      const parts = !Array.isArray(value) && !key.startsWith('grpc-') ? value.split(',').map((v) => v.trim()) : values;
      return parts.map((v) => Buffer.from(v, 'base64'));
    },
  };
}

/** A handler's error ({ code, details }) as grpc-js's serverErrorToStatus reads it. */
function statusOf(err: unknown): { code: number; details: string } {
  const e = (err ?? {}) as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e.code === 'number' && Number.isInteger(e.code)) {
    return { code: e.code, details: typeof e.details === 'string' ? e.details : typeof e.message === 'string' ? e.message : 'Unknown Error' };
  }
  return { code: Status.UNKNOWN, details: typeof e.message === 'string' ? e.message : 'Unknown Error' };
}

/** Headers, messages and the status of one call. */
class Responder {
  headersSent = false;
  statusSent = false;
  private deadline: NodeJS.Timeout | undefined;

  constructor(readonly stream: ServerHttp2Stream) {
    // As grpc-js: every stream error is followed by 'close', which is what the call acts on.
    stream.on('error', () => {});
  }

  /**
   * grpc-js's deadline: one timer from the call's start, `ms` as grpc-timeout.ts reads it; `expire`
   * runs unless the status is sent or the stream closes first (either clears the timer).
   */
  setDeadline(ms: number, expire: () => void): void {
    this.deadline = setTimeout(expire, ms);
    this.stream.once('close', () => this.clearDeadline());
  }

  private clearDeadline(): void {
    if (this.deadline === undefined) return;
    clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  }

  /** Writes already-framed messages; `done` runs once they are written. */
  write(data: Buffer, done?: (err?: Error | null) => void): void {
    this.sendHeaders();
    this.stream.write(data, done);
  }

  /** Ends the call with this status, after `last` (a framed message) if given. */
  sendStatus(code: number, details: string, last?: Buffer): void {
    if (this.statusSent || this.gone) return;
    this.statusSent = true;
    this.clearDeadline();
    const trailers = { 'grpc-status': String(code), 'grpc-message': encodeURI(details) };
    if (last !== undefined) this.sendHeaders();
    if (this.headersSent) {
      this.stream.once('wantTrailers', () => this.stream.sendTrailers(trailers));
      this.stream.end(last);
    } else {
      this.stream.respond({ ...trailers, ':status': 200, 'content-type': 'application/grpc+proto' }, { endStream: true });
    }
    // Whatever the client still sends is read and dropped, so its stream can close.
    this.stream.resume();
  }
}

/** What a fast call needs of the service: the grpc-js handler and its (de)serializers. */
export interface UnaryMethod<Req, Res> {
  path: string;
  deserialize: (bytes: Buffer) => Req;
  serialize: (value: Res) => Buffer;
  handler: (call: { request: Req; metadata: MetadataLike }, callback: (err: unknown, value?: Res | null) => void) => void;
}

/** Ends a call before reading it, trailers-only, as grpc-js does for a malformed grpc-timeout. */
export function refuseCall(stream: ServerHttp2Stream, code: number, details: string): void {
  new Responder(stream).sendStatus(code, details);
}

/**
 * A unary call: its one request message is read up to the half-close, then the same handler
 * grpc-js would run is called, and its answer written as grpc-js writes it. With `deadlineMs`
 * (grpc-timeout), the call ends DEADLINE_EXCEEDED when it passes first.
 */
export function serveUnary<Req, Res>(method: UnaryMethod<Req, Res>, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, maxMessage: number, deadlineMs?: number): void {
  const out = new Responder(stream);
  const reader = new MessageReader(maxMessage);
  let request: Buffer | undefined;
  let second = false;
  if (deadlineMs !== undefined) out.setDeadline(deadlineMs, () => out.sendStatus(Status.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE));
  stream.on('data', (chunk: Buffer) => {
    // As grpc-js: nothing more is read once the call has ended.
    if (out.statusSent || out.gone) return;
    let bodies: Buffer[];
    try {
      bodies = reader.write(chunk);
    } catch (err) {
      if (!(err instanceof MessageTooLarge)) throw err;
      out.sendStatus(Status.RESOURCE_EXHAUSTED, err.message);
      return;
    }
    for (const body of bodies) {
      if (request !== undefined) {
        second = true;
        out.sendStatus(Status.UNIMPLEMENTED, `Received a second request message for server streaming method ${method.path}`);
        return;
      }
      request = body;
    }
  });
  // node:http2 ends the readable side at a reset too.
  stream.on('end', () => {
    if (second) return;
    if (request === undefined) {
      out.sendStatus(Status.UNIMPLEMENTED, `Received no request message for server streaming method ${method.path}`);
      return;
    }
    // As grpc-js: a request read in time goes to the handler even when the call ended before the
    // half-close (its deadline, a reset, a message over the limit after it). The answer is then
    // dropped, the caller has the status that ended the call (or nothing), and the push may go out.
    const answer = (err: unknown, value?: Res | null): void => {
      if (out.statusSent || out.gone) return;
      if (err) {
        const s = statusOf(err);
        out.sendStatus(s.code, s.details);
        return;
      }
      // grpc-js writes the message, waits for the write, then ends with the trailers; the same
      // frames, with one write fewer.
      out.sendStatus(Status.OK, 'OK', framed(method.serialize(value as Res)));
    };
    try {
      method.handler({ request: method.deserialize(request), metadata: headerMetadata(headers) }, answer);
    } catch {
      out.sendStatus(Status.UNKNOWN, 'Unknown error');
    }
  });
}

/**
 * A PushStream call for pushStreamHandler: the subset of grpc-js's ServerDuplexStream it uses.
 * Requests are emitted as 'data' one message at a time (none while paused); answers written in
 * one turn go out as one write, each answer's callback called when it is written; the status
 * follows the written answers.
 */
export class FastPushStreamCall extends EventEmitter implements PushStreamCall {
  readonly metadata: MetadataLike;
  cancelled = false;
  private readonly out: Responder;
  private readonly reader: MessageReader;
  private paused = false;
  /** Messages read while paused, emitted on resume. */
  private queued: Buffer[] = [];
  private halfClosed = false;
  private endEmitted = false;
  private pending: Buffer[] = [];
  private pendingCallbacks: Array<() => void> = [];
  private flushScheduled = false;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    private readonly deserialize: (bytes: Buffer) => unknown,
    private readonly serialize: (value: PushStreamResponse) => Buffer,
    maxMessage: number,
    deadlineMs?: number,
  ) {
    super();
    this.metadata = headerMetadata(headers);
    this.out = new Responder(stream);
    this.reader = new MessageReader(maxMessage);
    // As grpc-js: the deadline ends the whole stream, after the answers already written, and the
    // handler is told the call is over as a cancel; later answers are not written.
    if (deadlineMs !== undefined) this.out.setDeadline(deadlineMs, () => this.fail(Status.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED_MESSAGE));
    // As grpc-js's ServerDuplexStreamImpl: emit('error', status) ends the call with that status.
    this.on('error', (err: unknown) => {
      const s = statusOf(err);
      this.sendStatus(s.code, s.details);
    });
    stream.on('data', (chunk: Buffer) => this.onChunk(chunk));
    stream.on('end', () => {
      this.halfClosed = true;
      this.maybeEnd();
    });
    stream.on('close', () => this.cancel());
  }

  isPaused(): boolean {
    return this.paused;
  }

  pause(): this {
    this.paused = true;
    this.out.stream.pause();
    return this;
  }

  resume(): this {
    this.paused = false;
    while (!this.paused && this.queued.length > 0 && !this.out.statusSent) this.deliver(this.queued.shift()!);
    if (!this.paused) {
      this.maybeEnd();
      if (!this.halfClosed && !this.out.statusSent) this.out.stream.resume();
    }
    return this;
  }

  write(answer: PushStreamResponse, written: () => void): boolean {
    if (this.cancelled || this.out.statusSent) return false;
    this.pending.push(framed(this.serialize(answer)));
    this.pendingCallbacks.push(written);
    // Answers settled in the same turn (one promise resolution after another) share one write.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
    return true;
  }

  end(): this {
    this.sendStatus(Status.OK, 'OK');
    return this;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.out.gone) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const callbacks = this.pendingCallbacks;
    this.pending = [];
    this.pendingCallbacks = [];
    this.out.write(data, (err) => {
      if (err) return; // the stream is gone: 'close' follows, and cancels the call
      for (const cb of callbacks) cb();
    });
  }

  /**
   * Ends the call with this status on the next tick unless the handler ended it first, as grpc-js
   * does for a malformed grpc-timeout (its status is queued before the handler runs). Call before
   * running the handler.
   */
  failSoon(code: number, details: string): void {
    process.nextTick(() => this.fail(code, details));
  }

  /** Ends the call with a status of the server's own and tells the handler, as a cancel. */
  private fail(code: number, details: string): void {
    if (this.cancelled || this.out.statusSent) return;
    this.sendStatus(code, details);
    this.cancel();
  }

  private sendStatus(code: number, details: string): void {
    if (this.cancelled || this.out.statusSent) return;
    this.flush();
    this.out.sendStatus(code, details);
  }

  private onChunk(chunk: Buffer): void {
    if (this.out.statusSent || this.out.gone) return;
    let bodies: Buffer[];
    try {
      bodies = this.reader.write(chunk);
    } catch (err) {
      if (!(err instanceof MessageTooLarge)) throw err;
      // grpc-js then tells the handler the call is over, as a cancel.
      this.fail(Status.RESOURCE_EXHAUSTED, err.message);
      return;
    }
    for (const body of bodies) {
      if (this.paused) this.queued.push(body);
      else this.deliver(body);
    }
  }

  private deliver(body: Buffer): void {
    this.emit('data', this.deserialize(body));
  }

  private maybeEnd(): void {
    if (!this.halfClosed || this.endEmitted || this.paused || this.queued.length > 0 || this.out.statusSent) return;
    this.endEmitted = true;
    this.emit('end');
  }

  /** The stream closed (a cancel if no status was sent) or the call failed in transport: as grpc-js, 'cancelled'. */
  private cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.queued = [];
    process.nextTick(() => this.emit('cancelled', 'cancelled'));
  }
}
