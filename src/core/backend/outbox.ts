import type { ConsumerDirectory } from '../../cluster/consumers.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ClientEventType } from './event.js';

interface Pending {
  pid: string;
  sticky: number;
  type: ClientEventType;
  event: Buffer;
}

/** Beyond this many waiting events (a long directory outage) the oldest are dropped, counted. */
const MAX_PENDING = 100_000;
/** Events sent together; the directory connection pipelines them in order. */
const BATCH = 256;
const RETRY_MS = 500;

/**
 * Connect and disconnect events leave the node in the order they happened, and a failed send
 * is retried (from the first failure on, in order) instead of dropped: a consumer never sees a
 * connection's disconnect before its connect, and misses none while the directory recovers.
 * A retry may repeat events the directory took just before a failure (at least once).
 */
export class LifecycleOutbox {
  private pending: Pending[] = [];
  private running: Promise<void> | undefined;
  /** Events dropped from the front so far (they may have been in the batch being sent). */
  private dropped = 0;

  /** When the directory last came back after failing (ms), or 0. */
  private recoveredAt = 0;
  /** Projects whose events reached a consumer: only theirs wait for consumers after an outage. */
  private readonly withConsumers = new Set<string>();
  private stopped = false;

  constructor(
    private readonly directory: ConsumerDirectory,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    /**
     * After an outage, "no consumer" is not final for this long: a Redis that restarted empty
     * knows no consumer until their nodes re-register, so the event waits for them.
     */
    private readonly recoveryMs: number,
  ) {}

  push(pid: string, sticky: number, type: ClientEventType, event: Buffer): void {
    this.pending.push({ pid, sticky, type, event });
    if (this.pending.length > MAX_PENDING) {
      const dropped = this.pending.shift()!;
      this.dropped++;
      this.metrics.backendEvents.inc({ type: dropped.type, result: 'dropped' });
    }
    this.metrics.backendOutbox.set(this.pending.length);
    // run() clears `running` in the same synchronous step in which it finds nothing left, so an
    // event pushed at any moment either is seen by the loop or starts a new run.
    this.running ??= this.run();
  }

  /**
   * The directory is back after an outage: for a while, "no consumer" for a project that had
   * consumers means "not registered again yet".
   */
  recovered(): void {
    this.recoveredAt = Date.now();
  }

  /** Stops sending (shutdown); what is still pending is dropped with the node. */
  stop(): void {
    this.stopped = true;
  }

  /** Waits (bounded) for what is pending to be sent; for shutdown. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.running === undefined) return;
    await Promise.race([this.running, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private async run(): Promise<void> {
    let failing = false;
    // The loop's exit check and the clearing of `running` happen in one synchronous step.
    try {
      while (this.pending.length > 0 && !this.stopped) {
        // While recovering, one at a time: a retried event must not resend the ones after it.
        const recovering = Date.now() - this.recoveredAt < this.recoveryMs;
        const batch = this.pending.slice(0, recovering ? 1 : BATCH);
        const droppedBefore = this.dropped;
        const results = await Promise.allSettled(batch.map((p) => this.directory.dispatch(p.pid, p.event, p.sticky)));
        if (failing && results[0]!.status === 'fulfilled') {
          failing = false;
          this.recovered();
          this.logger.info('client events flowing to the consumer directory again');
        }
        const waitFor = (i: number): boolean => recovering && this.withConsumers.has(batch[i]!.pid);
        let done = results.findIndex((r, i) => r.status === 'rejected' || (r.value === 0 && waitFor(i)));
        if (done === -1) done = batch.length;
        for (let i = 0; i < done; i++) {
          const r = results[i] as PromiseFulfilledResult<number>;
          if (r.value > 0) this.withConsumers.add(batch[i]!.pid);
          this.metrics.backendEvents.inc({ type: batch[i]!.type, result: r.value > 0 ? 'delivered' : 'no_consumer' });
        }
        this.pending.splice(0, Math.max(0, done - (this.dropped - droppedBefore)));
        this.metrics.backendOutbox.set(this.pending.length);
        if (done < batch.length) {
          const failed = results[done]!;
          if (failed.status === 'rejected' && !failing) {
            this.logger.warn({ err: (failed.reason as Error).message, waiting: this.pending.length }, 'client events wait for the consumer directory');
            failing = true;
          }
          await new Promise((r) => setTimeout(r, RETRY_MS).unref());
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
