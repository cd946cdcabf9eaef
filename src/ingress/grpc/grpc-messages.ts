/**
 * gRPC's length-prefixed messages on an HTTP/2 stream (a flag byte, a big-endian u32 length, the
 * bytes), read and written as grpc-js does, for the node:http2 fast path (grpc-fast-path.ts).
 */

/** A message longer than the limit: grpc-js ends the call RESOURCE_EXHAUSTED with this message. */
export class MessageTooLarge extends Error {
  constructor(size: number, max: number) {
    super(`Received message larger than max (${size} vs ${max})`);
  }
}

/**
 * Splits DATA chunks into message bodies. As grpc-js: the length is checked against `max` as soon
 * as the prefix is read, and the flag byte is not looked at (the fast path takes only calls without
 * grpc-encoding, where grpc-js reads a flagged message as identity too). A body wholly inside one
 * chunk is a view of it, not a copy.
 */
export class MessageReader {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Length of the message being read, once its prefix is in; -1 while reading the prefix. */
  private need = -1;

  constructor(private readonly max: number) {}

  /** Bodies completed by `chunk`, in order. Throws MessageTooLarge. */
  write(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    if (this.partialBytes > 0) {
      at = this.continuePartial(chunk, out);
      if (at < 0) return out;
    }
    while (chunk.length - at >= 5) {
      const size = chunk.readUInt32BE(at + 1);
      if (size > this.max) throw new MessageTooLarge(size, this.max);
      if (chunk.length - at - 5 < size) break;
      out.push(chunk.subarray(at + 5, at + 5 + size));
      at += 5 + size;
    }
    if (at < chunk.length) this.keep(chunk.subarray(at));
    return out;
  }

  /** True while a message is partly read (a half-close now drops it, as grpc-js does). */
  get midMessage(): boolean {
    return this.partialBytes > 0;
  }

  private keep(rest: Buffer): void {
    this.partial.push(rest);
    this.partialBytes += rest.length;
    if (this.need < 0 && this.partialBytes >= 5) this.readPrefix();
  }

  private readPrefix(): void {
    const head = this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialBytes);
    this.partial = [head];
    const size = head.readUInt32BE(1);
    if (size > this.max) throw new MessageTooLarge(size, this.max);
    this.need = size;
  }

  /** Completes the partial message from `chunk`; the offset in `chunk` after it, or -1 if `chunk` did not complete it. */
  private continuePartial(chunk: Buffer, out: Buffer[]): number {
    if (this.need < 0) {
      const take = Math.min(5 - this.partialBytes, chunk.length);
      this.partial.push(chunk.subarray(0, take));
      this.partialBytes += take;
      if (this.partialBytes < 5) return -1;
      this.readPrefix();
      return this.finishPartial(chunk, take, out);
    }
    return this.finishPartial(chunk, 0, out);
  }

  private finishPartial(chunk: Buffer, from: number, out: Buffer[]): number {
    const missing = 5 + this.need - this.partialBytes;
    const take = Math.min(missing, chunk.length - from);
    if (take > 0) {
      this.partial.push(chunk.subarray(from, from + take));
      this.partialBytes += take;
    }
    if (take < missing) return -1;
    const whole = Buffer.concat(this.partial, this.partialBytes);
    out.push(whole.subarray(5));
    this.partial = [];
    this.partialBytes = 0;
    this.need = -1;
    return from + take;
  }
}

/** `body` with its 5-byte prefix (flag 0: responses are not compressed, as grpc-js's). */
export function framed(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(body.length + 5);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}
