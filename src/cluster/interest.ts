import type { Bus } from './bus.js';

interface Entry {
  refs: number;
  subscribed: Promise<void>;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Reference-counted bus subscriptions: the first holder of a channel subscribes, the last
 * one unsubscribes after a short delay (re-checked), so churn on a busy channel costs no
 * Redis round trips.
 */
export class Interest {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly bus: Bus,
    private readonly unsubscribeDelayMs: number,
  ) {}

  /** Resolves when the bus receives the channel. */
  acquire(channel: string): Promise<void> {
    let entry = this.entries.get(channel);
    if (entry === undefined) {
      entry = { refs: 0, subscribed: this.bus.subscribe(channel), timer: undefined };
      this.entries.set(channel, entry);
    }
    entry.refs += 1;
    if (entry.timer !== undefined) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    return entry.subscribed;
  }

  /** Resolves when an already-held channel is subscribed. */
  ready(channel: string): Promise<void> {
    return this.entries.get(channel)?.subscribed ?? Promise.resolve();
  }

  release(channel: string): void {
    const entry = this.entries.get(channel);
    if (entry === undefined || entry.refs === 0) return;
    entry.refs -= 1;
    if (entry.refs > 0) return;
    const drop = (): void => {
      if (entry.refs > 0 || this.entries.get(channel) !== entry) return;
      this.entries.delete(channel);
      void this.bus.unsubscribe(channel);
    };
    if (this.unsubscribeDelayMs <= 0) drop();
    else {
      entry.timer = setTimeout(drop, this.unsubscribeDelayMs);
      entry.timer.unref();
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
