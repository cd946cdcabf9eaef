import { ReplyError, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BusRefusedError, BusUnconfirmedError, type AppendGroup, type AppendOptions, type AppendResult, type Bus, type OnceKey, type Position, type RangeQuery, type StoredRange } from './bus.js';
import { PublishWindow } from './publish-window.js';
import { NOT_CONNECTED, logOutages, quit, redisConnection } from './redis-connection.js';
import { APPEND_AND_PUBLISH, APPEND_MANY_AND_PUBLISH, READ_RANGE, appendManyArgs, parsePositions, parseRange } from './redis-history-scripts.js';

// Claim and publish in one atomic step: a duplicate is never published, and a publish that
// fails never leaves a claim behind. KEYS: claim key, channel. ARGV: value, ttl ms, payload.
const PUBLISH_ONCE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return false
end
return redis.call('GET', KEYS[1])`;

/** The history scripts as commands defined on the publisher connection (defineCommand). */
interface HistoryScripts {
  pwAppend(numKeys: number, ...args: (string | Buffer)[]): Promise<unknown>;
  pwAppendMany(...args: (string | Buffer)[]): Promise<unknown>;
  pwReadBuffer(...args: string[]): Promise<unknown>;
}

export interface RedisBusOptions {
  url: string;
  /** Prepended to every channel so several clusters can share one Redis. */
  prefix: string;
  /** A publish not confirmed within this many ms is answered unconfirmed (the push answers DEADLINE_EXCEEDED). */
  commandTimeoutMs: number;
  /** Most publishes sent and not yet confirmed; over it a publish is refused at once (UNAVAILABLE). */
  maxInFlight: number;
  logger: Logger;
}


/**
 * Redis pub/sub bus. One connection publishes, one subscribes (a subscriber connection
 * refuses other commands). Neither queues commands while disconnected: a push that Redis
 * cannot take fails at once instead of waiting in memory. The subscriber replays the wanted
 * channel set itself after every reconnect, so interest survives Redis restarts.
 */
export class RedisBus implements Bus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly wanted = new Set<string>();
  private readonly scripts: HistoryScripts;
  private subscribed = false;
  /** Whether the subscriber has had its subscriptions in place before (a later pass is a resubscribe). */
  private everSubscribed = false;
  private closing = false;
  private handler: (channel: string, payload: Buffer) => void = () => {};
  private readonly gapHandlers: Array<(channels: readonly string[]) => void> = [];
  /** Every publish (plain and once) goes through it: bounded, and answered within the timeout. */
  readonly window: PublishWindow;

  constructor(private readonly options: RedisBusOptions) {
    this.window = new PublishWindow({
      maxInFlight: options.maxInFlight,
      timeoutMs: options.commandTimeoutMs,
      // An error reply means Redis did not run the command (a script that failed publishes nothing).
      refusedByServer: (err) => err instanceof ReplyError,
    });
    // The PUBLISHes of one event-loop turn go out in one write, in order, through cork() (see
    // batchWrites): ioredis's auto-pipelining does the same with a Pipeline object per turn,
    // which costs more per push than the command itself. No ioredis commandTimeout: the window
    // times publishes out with one timer, and a timed-out command must keep counting against
    // its bound until Redis answers it.
    this.pub = redisConnection(options.url, 'pushwire-pub');
    this.sub = redisConnection(options.url, 'pushwire-sub', { autoResubscribe: false });
    // EVALSHA with a fallback to EVAL: the script text is not sent with every push.
    this.pub.defineCommand('pwAppend', { lua: APPEND_AND_PUBLISH });
    this.pub.defineCommand('pwAppendMany', { lua: APPEND_MANY_AND_PUBLISH });
    this.pub.defineCommand('pwRead', { lua: READ_RANGE, numberOfKeys: 2 });
    this.scripts = this.pub as unknown as HistoryScripts;
    logOutages(this.pub, 'publisher', options.logger, () => this.closing);
    logOutages(this.sub, 'subscriber', options.logger, () => this.closing);
    this.sub.on('ready', () => void this.resubscribe());
    this.sub.on('close', () => {
      this.subscribed = false;
    });
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      this.handler(channel.toString('utf8', Buffer.byteLength(this.options.prefix)), message);
    });
  }

  publish(channel: string, payload: Buffer): Promise<void> {
    return this.window.run(() => {
      if (this.pub.status !== 'ready') throw new BusRefusedError(NOT_CONNECTED);
      this.batchWrites();
      return this.pub.publish(this.options.prefix + channel, payload) as Promise<unknown> as Promise<void>;
    });
  }

  async publishOnce(channel: string, payload: Buffer, once: OnceKey): Promise<string | undefined> {
    const prior = (await this.window.run(() => {
      if (this.pub.status !== 'ready') throw new BusRefusedError(NOT_CONNECTED);
      this.batchWrites();
      return this.pub.eval(
        PUBLISH_ONCE,
        2,
        `${this.options.prefix}once:${once.key}`,
        this.options.prefix + channel,
        once.value,
        String(once.ttlMs),
        payload,
      );
    })) as string | null;
    return prior ?? undefined;
  }

  /** Stream and meta keys of a channel's history, hash-tagged on the channel (one slot). */
  private historyKeys(channel: string): [string, string] {
    const p = this.options.prefix;
    return [`${p}h:{${channel}}`, `${p}hm:{${channel}}`];
  }

  async publishPositioned(channel: string, payload: Buffer, o: AppendOptions): Promise<AppendResult> {
    const [stream, meta] = this.historyKeys(channel);
    const args: (string | Buffer)[] = [this.options.prefix + channel, payload, String(o.size), String(o.ttlMs), String(o.metaTtlMs), String(o.messageTtlMs)];
    const keys = [stream, meta];
    if (o.once !== undefined) {
      keys.push(`${this.options.prefix}once:${o.once.key}`);
      args.push(o.once.value, String(o.once.ttlMs));
    }
    // Through the publish window like every publish: bounded, "not sent" vs "not confirmed" kept apart.
    const [offset, epoch] = (await this.window.run(() => {
      if (this.pub.status !== 'ready') throw new BusRefusedError(NOT_CONNECTED);
      this.batchWrites();
      return this.scripts.pwAppend(keys.length, ...keys, ...args);
    })) as [number, string];
    return offset === 0 ? { duplicate: true, earlier: epoch } : { duplicate: false, offset, epoch };
  }

  /**
   * One script call for all the groups (a batch holds at most MAX_BATCH_PUSHES publications):
   * per publication only its XADD and PUBLISH remain on Redis; the command carries two keys per
   * channel and one packed argument (appendManyArgs).
   */
  publishPositionedMany(groups: readonly AppendGroup[]): Promise<Position>[] {
    if (groups.length === 0) return [];
    const call = this.window
      .run(() => {
        if (this.pub.status !== 'ready') throw new BusRefusedError(NOT_CONNECTED);
        this.batchWrites();
        return this.scripts.pwAppendMany(...appendManyArgs(groups, (c) => this.historyKeys(c), (c) => this.options.prefix + c));
      })
      .then((reply) => {
        try {
          return parsePositions(reply, groups.length);
        } catch (err) {
          // The script ran (it answered): its effects are there, whatever the reply looks like.
          throw new BusUnconfirmedError((err as Error).message);
        }
      });
    return groups.map((_, i) => call.then((positions) => positions[i]!));
  }

  async readHistory(channel: string, q: RangeQuery): Promise<StoredRange> {
    if (this.pub.status !== 'ready') throw new Error(`redis publisher is ${this.pub.status}`);
    const [stream, meta] = this.historyKeys(channel);
    return parseRange((await this.scripts.pwReadBuffer(stream, meta, String(q.after), String(q.count), q.reverse ? '1' : '0')) as (Buffer | number)[]);
  }

  async removeHistory(channel: string): Promise<void> {
    if (this.pub.status !== 'ready') throw new Error(`redis publisher is ${this.pub.status}`);
    await this.pub.del(this.historyKeys(channel)[0]);
  }

  private corked = false;

  /**
   * Corks the publisher's socket until setImmediate (after this I/O phase, as ioredis's
   * auto-pipelining flushes), so the commands issued meanwhile, by every call whose request
   * arrived in this phase, leave in one write (a writev), in issue order.
   */
  private batchWrites(): void {
    if (this.corked) return;
    const socket = this.pub.stream;
    if (socket === undefined) return;
    this.corked = true;
    socket.cork();
    setImmediate(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  async subscribe(channel: string): Promise<void> {
    this.wanted.add(channel);
    if (!this.subscribed) return; // resubscribe() sends it once the connection is ready
    try {
      await this.sub.subscribe(this.options.prefix + channel);
    } catch {
      // The connection dropped mid-command; resubscribe() replays `wanted` on reconnect.
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    this.wanted.delete(channel);
    if (!this.subscribed) return;
    try {
      await this.sub.unsubscribe(this.options.prefix + channel);
    } catch {
      // Nothing to undo: a reconnect starts from `wanted`, which no longer has it.
    }
  }

  onMessage(handler: (channel: string, payload: Buffer) => void): void {
    this.handler = handler;
  }

  onGap(handler: (channels: readonly string[]) => void): void {
    this.gapHandlers.push(handler);
  }

  isReady(): boolean {
    return this.subscribed && this.pub.status === 'ready';
  }

  async start(): Promise<void> {
    // A node starts even when Redis is down: it reports not-ready and keeps reconnecting.
    await Promise.all([this.pub.connect().catch(() => {}), this.sub.connect().catch(() => {})]);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([quit(this.pub), quit(this.sub)]);
    this.window.close();
  }

  private async resubscribe(): Promise<void> {
    const sent = new Set<string>();
    try {
      // Channels wanted while this runs are picked up by the next pass, and channels let go of
      // after they were sent (unsubscribe() does not send while the flag is down) are
      // unsubscribed; the flag flips only when a pass finds nothing left, with no await in between.
      for (;;) {
        const todo = [...this.wanted].filter((c) => !sent.has(c));
        const stale = [...sent].filter((c) => !this.wanted.has(c));
        if (todo.length === 0 && stale.length === 0) break;
        for (let i = 0; i < todo.length; i += 1000) {
          const chunk = todo.slice(i, i + 1000);
          await this.sub.subscribe(...chunk.map((c) => this.options.prefix + c));
          for (const c of chunk) sent.add(c);
        }
        for (let i = 0; i < stale.length; i += 1000) {
          const chunk = stale.slice(i, i + 1000);
          await this.sub.unsubscribe(...chunk.map((c) => this.options.prefix + c));
          for (const c of chunk) sent.delete(c);
        }
      }
      this.subscribed = true;
      this.options.logger.info({ channels: sent.size }, 'redis subscriptions restored');
      // Pub/sub keeps nothing for a subscriber that is away: whatever was published on these
      // channels between the connection dropping and now is lost, and only the listeners can
      // tell their clients (e.g. the gap signal of channels with history).
      if (this.everSubscribed && sent.size > 0) {
        const channels = [...sent];
        for (const h of this.gapHandlers) h(channels);
      }
      this.everSubscribed = true;
    } catch (err) {
      this.options.logger.warn({ err }, 'redis resubscribe failed; retrying on next reconnect');
    }
  }
}

