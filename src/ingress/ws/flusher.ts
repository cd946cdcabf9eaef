import type { Metrics } from '../../observability/metrics.js';

export interface Flushable {
  flush(): number;
}

/**
 * A flush yields to the event loop after writing for this long; the connections not yet written
 * are written in the next turn (with whatever they got meanwhile). Without it, a burst that
 * queued frames for thousands of sockets is one long turn in which no ingress request is read
 * or answered (REST and gRPC answers waited behind the whole fan-out).
 */
export const FLUSH_SLICE_MS = 8;
/**
 * Slices in a row a flush may stay behind before the node holds back further deliveries. A few
 * let a burst keep coalescing (sockets still waiting collect more frames per write); more would
 * let socket queues grow without bound under sustained overload.
 */
export const BEHIND_SLICES = 8;
/** How many connections are written between two looks at the clock. */
const CLOCK_EVERY = 32;

/**
 * Coalesces writes: connections that got frames during this event-loop turn are flushed
 * once, in setImmediate (after the turn's I/O callbacks), so every socket gets one write
 * per turn however many messages reached it. Per-write metrics are summed here too.
 *
 * Subscribers of one channel usually got the very same frames in a turn: `combine` builds
 * their combined buffer once and hands the same Buffer to each of them, instead of a
 * Buffer.concat per socket.
 */
export class Flusher {
  private dirty: Flushable[] = [];
  private armed = false;
  private behindSlices = 0;
  private stamps: number[] = [];
  /** Connections waiting for a write delay, by due time (ms): one timer per due millisecond. */
  private readonly delayed = new Map<number, Flushable[]>();
  private lastFrames: readonly Buffer[] | undefined;
  private lastCombined: Buffer | undefined;

  constructor(private readonly metrics: Metrics) {}

  schedule(conn: Flushable): void {
    this.dirty.push(conn);
    this.arm();
  }

  /**
   * Flushes `conn` in about `delayMs` (a project's write delay), with every other connection
   * due in the same millisecond. A connection flushed earlier meanwhile (a reply) is flushed
   * again for nothing, which writes nothing.
   */
  scheduleAfter(conn: Flushable, delayMs: number): void {
    const due = Math.ceil(performance.now() + delayMs);
    let batch = this.delayed.get(due);
    if (batch === undefined) {
      this.delayed.set(due, (batch = []));
      setTimeout(() => {
        this.delayed.delete(due);
        for (const c of batch!) this.dirty.push(c);
        this.arm();
      }, delayMs).unref();
    }
    batch.push(conn);
  }

  /** Notes a message's publish time; observed as push-to-write latency once every socket that has it is written. */
  stamp(publishedAt: number): void {
    this.stamps.push(publishedAt);
    this.arm();
  }

  /**
   * `frames` as one Buffer (`bytes` long). The same frame objects in the same order as the
   * previous call of this flush give the previous call's Buffer: written to many sockets,
   * never modified.
   */
  combine(frames: readonly Buffer[], bytes: number): Buffer {
    const last = this.lastFrames;
    if (last !== undefined && last.length === frames.length) {
      let same = true;
      for (let i = 0; i < frames.length; i++) {
        if (last[i] !== frames[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastCombined!;
    }
    const combined = Buffer.concat(frames as Buffer[], bytes);
    this.lastFrames = frames;
    this.lastCombined = combined;
    return combined;
  }

  /** The flush has yielded BEHIND_SLICES times in a row: delivering more now would only grow socket queues. */
  get behind(): boolean {
    return this.behindSlices >= BEHIND_SLICES;
  }

  private arm(): void {
    if (!this.armed) {
      this.armed = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    this.armed = false;
    const conns = this.dirty;
    this.dirty = [];
    const started = performance.now();
    let bytes = 0;
    let writes = 0;
    let i = 0;
    while (i < conns.length) {
      const n = conns[i++]!.flush();
      bytes += n;
      if (n > 0) writes++;
      if (i % CLOCK_EVERY === 0 && i < conns.length && performance.now() - started >= FLUSH_SLICE_MS) break;
    }
    this.lastFrames = undefined;
    this.lastCombined = undefined;
    if (bytes > 0) {
      this.metrics.bytesSent.inc(bytes);
      this.metrics.socketWrites.inc(writes);
    }
    if (conns.length > 0) this.metrics.flushDuration.observe((performance.now() - started) / 1000);
    this.behindSlices = i < conns.length ? this.behindSlices + 1 : 0;
    if (i < conns.length) {
      // The rest go first next turn; they are still marked scheduled, so frames they get
      // meanwhile join their queue instead of adding them again.
      this.dirty = conns.slice(i).concat(this.dirty);
      this.arm();
      return;
    }
    const stamps = this.stamps;
    this.stamps = [];
    const now = Date.now();
    for (const t of stamps) this.metrics.pushToWrite.observe(Math.max(0, now - t) / 1000);
  };
}
