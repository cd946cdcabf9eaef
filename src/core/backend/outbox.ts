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

  constructor(
    private readonly directory: ConsumerDirectory,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  push(pid: string, sticky: number, type: ClientEventType, event: Buffer): void {
    this.pending.push({ pid, sticky, type, event });
    if (this.pending.length > MAX_PENDING) {
      const dropped = this.pending.shift()!;
      this.dropped++;
      this.metrics.backendEvents.inc({ type: dropped.type, result: 'dropped' });
    }
    this.metrics.backendOutbox.set(this.pending.length);
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  /** Waits (bounded) for what is pending to be sent; for shutdown. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.running === undefined) return;
    await Promise.race([this.running, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private async run(): Promise<void> {
    let failing = false;
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, BATCH);
      const droppedBefore = this.dropped;
      const results = await Promise.allSettled(batch.map((p) => this.directory.dispatch(p.pid, p.event, p.sticky)));
      let done = results.findIndex((r) => r.status === 'rejected');
      if (done === -1) done = batch.length;
      for (let i = 0; i < done; i++) {
        const r = results[i] as PromiseFulfilledResult<number>;
        this.metrics.backendEvents.inc({ type: batch[i]!.type, result: r.value > 0 ? 'delivered' : 'no_consumer' });
      }
      this.pending.splice(0, Math.max(0, done - (this.dropped - droppedBefore)));
      this.metrics.backendOutbox.set(this.pending.length);
      if (done < batch.length) {
        if (!failing) {
          const err = (results[done] as PromiseRejectedResult).reason as Error;
          this.logger.warn({ err: err.message, waiting: this.pending.length }, 'client events wait for the consumer directory');
        }
        failing = true;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      } else if (failing) {
        failing = false;
        this.logger.info('client events flowing to the consumer directory again');
      }
    }
  }
}
