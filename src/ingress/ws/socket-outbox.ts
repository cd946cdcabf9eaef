import type { Duplex } from 'node:stream';
import type { Flusher } from './flusher.js';

/** Up to this many queued bytes are combined into one buffer; above it, one corked batch (a single writev). */
const CONCAT_LIMIT = 64 * 1024;

/**
 * One connection's bounded queue of outgoing frames, shared by the legacy and the v1 connection:
 * frames wait here until the Flusher's turn and then leave in one socket write. The bound covers
 * what is queued here plus what the socket has not handed to the kernel yet.
 */
export class SocketOutbox {
  private frames: Buffer[] = [];
  private bytes = 0;

  constructor(
    private readonly socket: Duplex,
    private readonly flusher: Flusher,
    private readonly maxBytes: number,
  ) {}

  /** Queues `frame`; false (and nothing queued) when it would pass the bound: the caller closes as a slow consumer. */
  push(frame: Buffer): boolean {
    if (this.bytes + this.socket.writableLength + frame.length > this.maxBytes) return false;
    this.frames.push(frame);
    this.bytes += frame.length;
    return true;
  }

  /** Bytes queued here or in the socket, not yet taken by the kernel. */
  backlog(): number {
    return this.bytes + this.socket.writableLength;
  }

  clear(): void {
    this.frames = [];
    this.bytes = 0;
  }

  /**
   * Writes everything queued as one write and returns the bytes written. With `open` false the
   * queue is dropped instead: once a close frame went out, no data frame may follow it.
   */
  write(open: boolean): number {
    if (this.frames.length === 0) return 0;
    const frames = this.frames;
    const bytes = this.bytes;
    this.clear();
    if (!open) return 0;
    if (frames.length === 1) this.socket.write(frames[0]!);
    // Subscribers of one channel often queued the very same frames: the Flusher combines them once.
    else if (bytes <= CONCAT_LIMIT) this.socket.write(this.flusher.combine(frames, bytes));
    else {
      this.socket.cork();
      for (const f of frames) this.socket.write(f);
      this.socket.uncork();
    }
    return bytes;
  }
}
