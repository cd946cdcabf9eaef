import type { OnlineUserCount, Presence, PresenceEvent } from '../cluster/presence.js';
import { store } from './online-users.js';

export type WatchItem =
  | { kind: 'snapshot'; users: OnlineUserCount[]; last: boolean; seq: number }
  | { kind: 'join' | 'leave'; event: PresenceEvent }
  | { kind: 'reset'; reason: ResetReason };

/** `lagging`: the consumer fell more than maxBuffered events behind; `gap`: events were missed. */
export type ResetReason = 'lagging' | 'gap';

export interface WatchOptions {
  /** Users per snapshot chunk (ws-cluster reports 1000 at a time). */
  chunkSize: number;
  /** Events held for a consumer that is not keeping up; one more and it gets a reset instead. */
  maxBuffered: number;
  onReset?: (reason: ResetReason) => void;
}

/** Users per snapshot chunk. */
export const SNAPSHOT_CHUNK = 1000;
/** Events buffered per watcher before it is reset. */
export const WATCH_BUFFER = 10_000;

/**
 * Streams a project's presence: a snapshot in chunks, then join/leave events in sequence
 * order. The event subscription opens before the sequence number is read, so every event
 * after the snapshot's sequence is seen; a missing number (or a lost subscription) and a
 * consumer too far behind both end in a reset and a fresh snapshot, never a silent skip.
 * `write` resolves when the consumer can take more. Resolves when `signal` aborts; rejects
 * (UNAVAILABLE) when the store fails.
 */
export async function watchOnlineUsers(
  presence: Presence,
  pid: string,
  write: (item: WatchItem) => Promise<void>,
  signal: AbortSignal,
  o: WatchOptions,
): Promise<void> {
  const pending = new Queue<PresenceEvent>();
  let trouble: ResetReason | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  signal.addEventListener('abort', poke, { once: true });
  const unwatch = await store(() =>
    presence.watch(pid, {
      event(e) {
        if (trouble !== undefined) return;
        if (pending.size >= o.maxBuffered) {
          trouble = 'lagging';
          pending.clear();
        } else pending.push(e);
        poke();
      },
      lost() {
        trouble ??= 'gap';
        pending.clear();
        poke();
      },
    }),
  );
  try {
    while (!signal.aborted) {
      // Anything buffered so far was published before the sequence read below: covered by it.
      pending.clear();
      trouble = undefined;
      let seq = await store(() => presence.sequence(pid));
      let after: string | undefined;
      for (let last = false; !last && trouble === undefined && !signal.aborted; ) {
        const { users } = await store(() => presence.listUsers(pid, o.chunkSize + 1, after));
        last = users.length <= o.chunkSize;
        const chunk = users.slice(0, o.chunkSize);
        after = chunk.at(-1)?.uid;
        await write({ kind: 'snapshot', users: chunk, last, seq });
      }
      while (trouble === undefined && !signal.aborted) {
        const e = pending.shift();
        if (e === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        if (e.seq <= seq) continue; // already reflected in the snapshot
        if (e.seq !== seq + 1) {
          trouble = 'gap';
          break;
        }
        seq = e.seq;
        await write({ kind: e.kind, event: e });
      }
      if (signal.aborted) return;
      const reason = trouble ?? 'gap';
      o.onReset?.(reason);
      await write({ kind: 'reset', reason });
    }
  } finally {
    signal.removeEventListener('abort', poke);
    unwatch();
  }
}

/** FIFO with O(1) shift. */
class Queue<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
