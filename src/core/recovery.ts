import type { Message } from './message.js';
import { channelOf, targetOf } from './targeting.js';

/** Live publications buffered per subscription while its history is read; beyond: a gap. */
const MAX_RECOVERY_BUFFER = 10_000;

/** One positioned subscription's delivery state (a channel with history). */
export interface PositionedSub<K> {
  /** What the transport calls the subscription (e.g. the v1 channel name and private flag). */
  readonly key: K;
  /** recovering: history is being read and live publications wait in `buffer`. stale: after a gap. */
  phase: 'recovering' | 'live' | 'stale';
  buffer: Message[];
  /** Last offset delivered, and the epoch it belongs to. */
  offset: number;
  epoch: string;
  /** A gap was signalled while recovering: reported once the subscribe answer is out. */
  gapped: boolean;
}

/**
 * The positioned subscriptions of one session, by hub channel, and the recovery merge: live
 * publications that arrive while history is read are buffered; once the read's position is
 * known, each subscription delivers exactly offset last+1, in order, once. Any jump, a new
 * epoch or a gap signal makes it stale and calls `onGap`, so the client resubscribes from its
 * last offset. Transports (protocol v1, gRPC Subscribe) share it.
 */
export class PositionedSubscriptions<K> {
  private readonly subs = new Map<string, PositionedSub<K>>();

  constructor(private readonly onGap: (sub: PositionedSub<K>) => void) {}

  /** Starts (or restarts) a subscription in the recovering phase. */
  begin(channel: string, key: K): PositionedSub<K> {
    const sub: PositionedSub<K> = { key, phase: 'recovering', buffer: [], offset: 0, epoch: '', gapped: false };
    this.subs.set(channel, sub);
    return sub;
  }

  /** Whether `sub` is still the channel's current subscription (not replaced or ended meanwhile). */
  current(channel: string, sub: PositionedSub<K>): boolean {
    return this.subs.get(channel) === sub;
  }

  delete(channel: string): void {
    this.subs.delete(channel);
  }

  clear(): void {
    this.subs.clear();
  }

  /** A positioned message: true when it is to be delivered now. Messages of other channels pass. */
  admit(m: Message): boolean {
    const sub = this.subs.get(channelOf(m.pid, targetOf(m.uid, m.topic)));
    if (sub === undefined) return true;
    if (sub.phase === 'stale') return false;
    if (sub.phase === 'recovering') {
      if (sub.buffer.length >= MAX_RECOVERY_BUFFER) sub.gapped = true;
      else sub.buffer.push(m);
      return false;
    }
    // A position taken before the channel had a stream ({0, ""}) is followed by offset 1 of any epoch.
    const sameStream = m.epoch === sub.epoch || (sub.epoch === '' && sub.offset === 0);
    if (sameStream && m.offset! <= sub.offset) return false; // already delivered
    if (!sameStream || m.offset !== sub.offset + 1) {
      this.stale(sub);
      return false;
    }
    sub.offset = m.offset!;
    sub.epoch = m.epoch!;
    return true;
  }

  /** The node may have missed publications on `channel`. */
  gap(channel: string): void {
    const sub = this.subs.get(channel);
    if (sub === undefined || sub.phase === 'stale') return;
    if (sub.phase === 'recovering') sub.gapped = true;
    else this.stale(sub);
  }

  /**
   * The history read is done and its answer sent: from `position` on, the buffered publications
   * follow (those the read already covered are dropped), handed to `deliver` in order.
   */
  settle(sub: PositionedSub<K>, position: { offset: number; epoch: string }, deliver: (m: Message) => void): void {
    sub.offset = position.offset;
    sub.epoch = position.epoch;
    sub.phase = 'live';
    const buffered = sub.buffer;
    sub.buffer = [];
    for (const m of buffered) {
      if (sub.phase !== 'live') break;
      if (this.admit(m)) deliver(m);
    }
    if (sub.gapped && sub.phase === 'live') this.stale(sub);
  }

  private stale(sub: PositionedSub<K>): void {
    sub.phase = 'stale';
    sub.buffer = [];
    this.onGap(sub);
  }
}
