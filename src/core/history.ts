import type { Bus, Position, StoredEntry } from '../cluster/bus.js';
import { Code, PushwireError, invalidArgument } from './errors.js';
import { checkOptionalName } from './names.js';
import { channelOf, targetOf } from './targeting.js';
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

  /**
   * HistoryService.GetHistory: the channel a (uid, topic) pair names, as in PushData.
   * FAILED_PRECONDITION without history, OUT_OF_RANGE for a `since` outside the stream.
   */
  async get(pid: string, uid: string, topic: string, q: HistoryQuery): Promise<HistoryPage> {
    const { channel, history } = this.historyChannel(pid, uid, topic);
    const page = await this.unavailableOnFailure(() => this.read(channel, history, q));
    const since = q.since;
    if (since !== undefined && !(since.epoch === '' && since.offset === 0)) {
      if (since.epoch !== page.epoch) throw new PushwireError(Code.OUT_OF_RANGE, `since names epoch "${since.epoch}"; the stream's epoch is "${page.epoch}"`);
      if (since.offset > page.offset) throw new PushwireError(Code.OUT_OF_RANGE, `since.offset ${since.offset} is beyond the stream's offset ${page.offset}`);
    }
    return page;
  }

  /** HistoryService.RemoveHistory: drops the entries, keeps the position. */
  async remove(pid: string, uid: string, topic: string): Promise<void> {
    const { channel } = this.historyChannel(pid, uid, topic);
    await this.unavailableOnFailure(() => this.bus.removeHistory(channel));
  }

  private historyChannel(pid: string, uid: string, topic: string): { channel: string; history: HistoryOptions } {
    checkOptionalName('uid', uid);
    checkOptionalName('topic', topic);
    if (uid === '' && topic === '') throw invalidArgument('name a channel: topic, uid, or both (broadcasts keep no history)');
    const history = this.options(pid, uid, topic).history;
    if (history === undefined) throw new PushwireError(Code.FAILED_PRECONDITION, "this channel's namespace keeps no history");
    if (!this.bus.isReady()) throw new PushwireError(Code.UNAVAILABLE, 'cluster bus is unavailable');
    return { channel: channelOf(pid, targetOf(uid, topic)), history };
  }

  private async unavailableOnFailure<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof PushwireError) throw err;
      throw new PushwireError(Code.UNAVAILABLE, `history store failed: ${(err as Error).message}`);
    }
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
