import { randomBytes } from 'node:crypto';
import type { AppendOptions, Position, RangeQuery, StoredEntry, StoredRange } from './bus.js';

interface Stream {
  epoch: string;
  top: number;
  entries: StoredEntry[];
  /** Wall-clock ms after which the entries are gone (idle for ttl). */
  entriesUntil: number;
  /** Wall-clock ms after which the position itself is gone (a new epoch starts). */
  metaUntil: number;
}

/**
 * Channel streams in process memory for MemoryBus: the same semantics as the Redis script
 * (bounded by size, idle streams expire, the position outlives them by metaTtl).
 */
export class MemoryHistory {
  private readonly streams = new Map<string, Stream>();
  private sweeps = 0;

  append(channel: string, payload: Buffer, o: AppendOptions): Position {
    const now = Date.now();
    if (++this.sweeps % 1024 === 0) this.sweep(now);
    let s = this.live(channel, now);
    if (s === undefined) {
      s = { epoch: newEpoch(), top: 0, entries: [], entriesUntil: 0, metaUntil: 0 };
      this.streams.set(channel, s);
    }
    if (s.entriesUntil <= now) s.entries = [];
    s.top++;
    s.entries.push({ offset: s.top, payload, time: now, expiresAt: o.messageTtlMs > 0 ? now + o.messageTtlMs : 0 });
    if (s.entries.length > o.size) s.entries.splice(0, s.entries.length - o.size);
    s.entriesUntil = now + o.ttlMs;
    s.metaUntil = now + o.metaTtlMs;
    return { offset: s.top, epoch: s.epoch };
  }

  read(channel: string, q: RangeQuery): StoredRange {
    const now = Date.now();
    const s = this.live(channel, now);
    if (s === undefined) return { epoch: '', top: 0, now, entries: [] };
    const entries = s.entriesUntil > now ? s.entries : [];
    const after = entries.filter((e) => e.offset > q.after);
    const picked = q.reverse ? after.slice(-q.count).reverse() : after.slice(0, q.count);
    return { epoch: s.epoch, top: s.top, now, entries: picked };
  }

  remove(channel: string): void {
    const s = this.streams.get(channel);
    if (s !== undefined) s.entries = [];
  }

  clear(): void {
    this.streams.clear();
  }

  private live(channel: string, now: number): Stream | undefined {
    const s = this.streams.get(channel);
    if (s !== undefined && s.metaUntil <= now) {
      this.streams.delete(channel);
      return undefined;
    }
    return s;
  }

  private sweep(now: number): void {
    for (const [channel, s] of this.streams) if (s.metaUntil <= now) this.streams.delete(channel);
  }
}

/** A new stream epoch: unique across restarts (time) and processes (random). */
export function newEpoch(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
