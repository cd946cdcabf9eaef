import type { Metrics } from '../../observability/metrics.js';

export interface Flushable {
  flush(): number;
}

/**
 * Coalesces writes: connections that got frames during this event-loop turn are flushed
 * once, in setImmediate (after the turn's I/O callbacks), so every socket gets one write
 * per turn however many messages reached it. Per-write metrics are summed here too.
 */
export class Flusher {
  private dirty: Flushable[] = [];
  private armed = false;
  private stamps: number[] = [];

  constructor(private readonly metrics: Metrics) {}

  schedule(conn: Flushable): void {
    this.dirty.push(conn);
    if (!this.armed) {
      this.armed = true;
      setImmediate(this.run);
    }
  }

  /** Notes a message's publish time; observed as push-to-write latency at the next flush. */
  stamp(publishedAt: number): void {
    this.stamps.push(publishedAt);
    if (!this.armed) {
      this.armed = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    this.armed = false;
    const conns = this.dirty;
    const stamps = this.stamps;
    this.dirty = [];
    this.stamps = [];
    const started = performance.now();
    let bytes = 0;
    for (const conn of conns) bytes += conn.flush();
    if (bytes > 0) this.metrics.bytesSent.inc(bytes);
    if (conns.length > 0) this.metrics.flushDuration.observe((performance.now() - started) / 1000);
    const now = Date.now();
    for (const t of stamps) this.metrics.pushToWrite.observe(Math.max(0, now - t) / 1000);
  };
}
