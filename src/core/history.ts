import type { Bus, Position, StoredEntry } from '../cluster/bus.js';
import { MAX_HISTORY_READ, NO_CHANNEL_OPTIONS, channelOptions, type ChannelOptions, type HistoryOptions } from './channels/options.js';
import { decodeMessage, type Message } from './message.js';
import type { ProjectRegistry } from './projects/registry.js';

export interface HistoryQuery {
  /** Only publications after this position. */
  since?: Position;
  /** At most this many (0 or above MAX_HISTORY_READ: MAX_HISTORY_READ). */
  limit: number;
  reverse: boolean;
}

export interface HistoryPage {
  /** The stream's epoch ('' when the channel has no stream yet) and its latest offset. */
  epoch: string;
  offset: number;
  /** Decoded publications, each with offset and epoch; per-message-TTL expired ones left out. */
  publications: Message[];
  /**
   * With `since`: every publication after it was served (nothing trimmed, same epoch, not more
   * than the limit). Always false when `since` is absent.
   */
  complete: boolean;
}

/**
 * Channel options per project and namespace, and history reads with the recovery rules:
 * a read `since` a position is complete only when the stream still holds every publication
 * after it, in the same epoch; anything else is reported incomplete, never served as whole.
 */
export class ChannelHistory {
  constructor(
    private readonly bus: Bus,
    private readonly projects: ProjectRegistry,
  ) {}

  /** The options of the channel a (uid, topic) push or subscription names; broadcasts have none. */
  options(pid: string, uid: string, topic: string): ChannelOptions {
    const settings = this.projects.get(pid)?.channels;
    if (settings === undefined || (uid === '' && topic === '')) return NO_CHANNEL_OPTIONS;
    return channelOptions(settings, topic);
  }

  async read(channel: string, history: HistoryOptions, q: HistoryQuery): Promise<HistoryPage> {
    const limit = q.limit <= 0 || q.limit > MAX_HISTORY_READ ? MAX_HISTORY_READ : q.limit;
    const since = q.since;
    const range = await this.bus.readHistory(channel, { after: since?.offset ?? 0, count: limit, reverse: q.reverse });
    const fresh = (e: StoredEntry): boolean => e.time + history.ttlMs > range.now;
    const served = range.entries.filter((e) => fresh(e) && (e.expiresAt === 0 || e.expiresAt > range.now));
    const publications = served.map((e) => {
      const m = decodeMessage(e.payload);
      m.offset = e.offset;
      m.epoch = range.epoch;
      return m;
    });
    return { epoch: range.epoch, offset: range.top, publications, complete: since !== undefined && this.complete(since, range.epoch, range.top, range.entries, fresh, limit) };
  }

  /** Whether the raw entries after `since` are all there (see HistoryPage.complete). */
  private complete(since: Position, epoch: string, top: number, entries: StoredEntry[], fresh: (e: StoredEntry) => boolean, limit: number): boolean {
    // A position taken before the channel had a stream ({0, ""}) precedes everything of the
    // epoch that started since: offsets of a new epoch start at 1.
    const fromStart = since.epoch === '' && since.offset === 0;
    if (!fromStart && since.epoch !== epoch) return false;
    if (since.offset > top) return false;
    const missed = top - since.offset;
    if (missed === 0) return true;
    if (missed > limit || entries.length !== missed) return false;
    // Entries are contiguous (the stream is trimmed from its head only): the oldest one decides.
    const oldest = entries.reduce((a, b) => (a.offset < b.offset ? a : b));
    return oldest.offset === since.offset + 1 && fresh(oldest);
  }
}
