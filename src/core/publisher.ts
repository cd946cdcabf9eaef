import { BusUnconfirmedError, type AppendGroup, type Bus, type Position } from '../cluster/bus.js';
import type { Metrics } from '../observability/metrics.js';
import { CODE_NAMES, Code, PushwireError, invalidArgument } from './errors.js';
import type { AppendOptions } from '../cluster/bus.js';
import type { HistoryOptions } from './channels/options.js';
import { ChannelHistory } from './history.js';
import { encodeMessage, type Selector } from './message.js';
import { RateLimiter } from './projects/rate-limiter.js';
import type { ProjectRegistry } from './projects/registry.js';
import { checkOptionalName, topicProblem, uidProblem } from './names.js';
import { channelOf, nodeOfCid, selectorChannels, targetOf } from './targeting.js';

export interface PushRequest {
  uid: string;
  topic: string;
  data: Uint8Array;
  /** Requested project; empty: the caller key's project, or the default project. */
  pid?: string;
  /** Accepted once per project within the idempotency window, cluster-wide. */
  idempotencyKey?: string;
  /** Targeted push: union within each list, intersection across the non-empty ones. */
  uids?: string[];
  cids?: string[];
  tags?: string[];
  /** Answers the client request with this id: delivered as a reply frame, not raw data. */
  replyTo?: string;
  /** Per-message TTL, seconds (0: none): not served from history or recovery once older. */
  ttl?: number;
  /** Not stored in the channel's history (delivered live, without an offset). */
  skipHistory?: boolean;
}

export interface PushResult {
  messageId: string;
  nodeId: string;
  /** The idempotency key repeated an earlier push: nothing was published, messageId is the earlier one's. */
  duplicate: boolean;
  /** On a channel with history: the publication's offset and the stream's epoch. */
  offset?: number;
  epoch?: string;
}

/** One push's outcome inside publishAll. */
interface Published {
  messageId: string;
  duplicate: boolean;
  offset?: number;
  epoch?: string;
}

export interface PushBatchResult {
  messageIds: string[];
  nodeId: string;
  /** One per push, in order: offset (a decimal string, as the generated uint64) and epoch on a channel with history. */
  results: { offset: string; epoch: string; duplicate: boolean }[];
}

/** Most pushes one batch call may carry. */
export const MAX_BATCH_PUSHES = 1000;

export const MAX_IDEMPOTENCY_KEY_BYTES = 256;

/** Client request ids are at most this long (the WebSocket codec's limit), so reply_to too. */
export const MAX_REPLY_TO_LENGTH = 64;

/** Most entries in each of uids, cids and tags. */
export const MAX_SELECTOR_ENTRIES = 1000;

/** The push's uids/cids/tags, or undefined when it uses uid/topic targeting. */
function selectorOf(req: PushRequest): Selector | undefined {
  const uids = req.uids ?? [];
  const cids = req.cids ?? [];
  const tags = req.tags ?? [];
  return uids.length + cids.length + tags.length > 0 ? { uids, cids, tags } : undefined;
}

/** The request fields Publisher.push's fast path handles (everything but idempotencyKey/uids/cids/tags). */
// ttl and skipHistory only matter on channels with history, which the fast path hands on itself.
const PLAIN_FIELDS = new Set(['uid', 'topic', 'data', 'pid', 'idempotencyKey', 'uids', 'cids', 'tags', 'ttl', 'skipHistory']);

/**
 * A uid/topic push without idempotency key or selector, and with no field the fast path does not
 * know: any other field set (one added to PushRequest later included) takes the general path.
 */
function isPlain(req: PushRequest): boolean {
  if (req.idempotencyKey || selectorOf(req) !== undefined) return false;
  for (const key in req) {
    if (PLAIN_FIELDS.has(key)) continue;
    const value = (req as unknown as Record<string, unknown>)[key];
    if (value !== undefined && value !== '' && value !== null) return false;
  }
  return true;
}

/** A validated push of a batch: its project, channels and (channels with history) the history options. */
interface Plan {
  pid: string;
  select?: Selector;
  channels: string[];
  /** Set when the push is stored: a uid/topic push to a channel with history, without skip_history. */
  history?: HistoryOptions;
}

/** A channel namespace's push size limit (maxPushBytes), checked after the node's. */
function checkChannelLimit(req: PushRequest, limit: number | undefined): void {
  if (limit !== undefined && req.data.length > limit) {
    throw invalidArgument(`data is ${req.data.length} bytes, more than the ${limit} allowed on this channel's namespace`);
  }
}

/** An AppendGroup for `channel` with `history`'s options, holding `payload` when given. */
function appendGroup(channel: string, history: HistoryOptions, payload?: Buffer, req?: PushRequest): AppendGroup {
  return {
    channel,
    size: history.size,
    ttlMs: history.ttlMs,
    metaTtlMs: history.metaTtlMs,
    payloads: payload === undefined ? [] : [payload],
    messageTtlMs: payload === undefined ? [] : [(req?.ttl ?? 0) * 1000],
  };
}

/** How a caller retries an unknown outcome without a duplicate (docs/api.md, retry semantics). */
const RETRY_HINT = 'it may still be delivered; retry with an idempotency_key to be safe';

/**
 * One push's channel publishes, settled: resolves when all were confirmed; rejects with the
 * refusal when none was sent, and BusUnconfirmedError when any was sent (or confirmed) and
 * another not confirmed: the push may have reached some of its recipients.
 */
async function allChannels(publishes: Promise<unknown>[]): Promise<void> {
  if (publishes.length === 1) {
    await publishes[0];
    return;
  }
  const results = await Promise.allSettled(publishes);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length === 0) return;
  const sent = failed.length < results.length || failed.some((r) => r.reason instanceof BusUnconfirmedError);
  if (!sent) throw failed[0]!.reason;
  throw new BusUnconfirmedError(`published to ${results.length - failed.length} of its ${results.length} channels, then: ${(failed[0]!.reason as Error).message}`);
}

/**
 * The one push use case behind every ingress: validate, stamp, publish to the bus.
 * A push the bus did not take is UNAVAILABLE (nothing was published: safe to retry); one it
 * took but did not confirm in time is DEADLINE_EXCEEDED (unknown outcome: retry with an
 * idempotency key). Never a silent drop, never UNAVAILABLE for a push that may be delivered.
 */
export class Publisher {
  private seq = 0;
  private readonly rates = new RateLimiter();
  // Ids stay unique across restarts of a node that keeps its --node-id.
  private readonly bootTag = Date.now().toString(36);

  constructor(
    private readonly bus: Bus,
    private readonly projects: ProjectRegistry,
    private readonly nodeId: string,
    private readonly maxPushBytes: number,
    private readonly metrics: Metrics,
    private readonly idempotencyWindowMs: number,
    /** Channel options (history, per-namespace push size) and history reads. */
    readonly history: ChannelHistory = new ChannelHistory(bus, projects),
  ) {}

  /**
   * `ingress` names the caller's transport for the pushes metric (grpc, http); `keyPid` is the
   * project of the caller's API key (undefined on an open API).
   */
  push(req: PushRequest, ingress: string, keyPid?: string): Promise<PushResult> {
    if (!isPlain(req)) return this.pushGeneral(req, ingress, keyPid);
    // The common case (uid/topic, no idempotency key) without publishAll's arrays, closures and
    // allSettled: same checks in the same order, same errors and metrics, a third of the promises.
    let messageId: string;
    let published: Promise<void | Position>;
    try {
      this.validate(req);
      const pid = this.projects.resolvePid(req.pid ?? '', keyPid);
      // Projects without channel options (the common case) skip the lookup of the namespace.
      let history: HistoryOptions | undefined;
      if (this.projects.get(pid)?.channels !== undefined) {
        const options = this.history.options(pid, req.uid, req.topic);
        checkChannelLimit(req, options.maxPushBytes);
        if (!req.skipHistory) history = options.history;
      }
      if (!this.bus.isReady()) throw new PushwireError(Code.UNAVAILABLE, 'cluster bus is unavailable');
      this.checkRate(pid, 1);
      messageId = `${this.nodeId}-${this.bootTag}-${(++this.seq).toString(36)}`;
      const data = Buffer.isBuffer(req.data) ? req.data : Buffer.from(req.data.buffer, req.data.byteOffset, req.data.length);
      const payload = encodeMessage({ id: messageId, pid, uid: req.uid, topic: req.topic, data, publishedAt: Date.now() });
      const channel = channelOf(pid, targetOf(req.uid, req.topic));
      published = history === undefined ? this.bus.publish(channel, payload) : this.bus.publishPositionedMany([appendGroup(channel, history, payload, req)])[0]!;
    } catch (err) {
      return Promise.reject(this.countFailure(ingress, 1, err));
    }
    return published.then(
      (position) => {
        this.metrics.busPublished.inc(1);
        this.okCounter(ingress).inc(1);
        if (position === undefined) return { messageId, nodeId: this.nodeId, duplicate: false };
        return { messageId, nodeId: this.nodeId, duplicate: false, offset: position.offset, epoch: position.epoch };
      },
      (err: unknown) => {
        throw this.countFailure(ingress, 1, this.busFailure([err], 1));
      },
    );
  }

  private async pushGeneral(req: PushRequest, ingress: string, keyPid: string | undefined): Promise<PushResult> {
    const [result] = await this.counted(ingress, 1, () => this.publishAll([req], '', keyPid));
    return { ...result!, nodeId: this.nodeId };
  }

  /** Counts `n` failed pushes under the error's code; returns the error for the caller to throw. */
  private countFailure(ingress: string, n: number, err: unknown): unknown {
    const code = err instanceof PushwireError ? err.code : Code.INTERNAL;
    this.metrics.pushes.inc({ ingress, result: CODE_NAMES[code] }, n);
    return err;
  }

  /**
   * Many pushes in one call: all are validated before any is published, then they are
   * published in order. One invalid push fails the batch (INVALID_ARGUMENT naming its index).
   */
  async pushBatch(reqs: readonly PushRequest[], ingress: string, keyPid?: string): Promise<PushBatchResult> {
    if (reqs.length > MAX_BATCH_PUSHES) {
      this.metrics.pushes.inc({ ingress, result: CODE_NAMES[Code.INVALID_ARGUMENT] });
      throw invalidArgument(`a batch holds at most ${MAX_BATCH_PUSHES} pushes, got ${reqs.length}`);
    }
    const results = await this.counted(ingress, reqs.length, () => this.publishAll(reqs, 'pushes', keyPid));
    return {
      messageIds: results.map((r) => r.messageId),
      nodeId: this.nodeId,
      results: results.map((r) => ({ offset: r.offset === undefined ? '0' : String(r.offset), epoch: r.epoch ?? '', duplicate: r.duplicate })),
    };
  }

  /** Runs `work`, counting `n` pushes under its outcome. */
  private async counted<T>(ingress: string, n: number, work: () => Promise<T>): Promise<T> {
    try {
      const result = await work();
      this.okCounter(ingress).inc(n);
      return result;
    } catch (err) {
      throw this.countFailure(ingress, n, err);
    }
  }

  // Labelled children cached per ingress: a label lookup per push is measurable at ingress rates.
  private readonly okCounters = new Map<string, { inc(n?: number): void }>();

  private okCounter(ingress: string): { inc(n?: number): void } {
    let child = this.okCounters.get(ingress);
    if (child === undefined) {
      child = this.metrics.pushes.labels({ ingress, result: 'ok' });
      this.okCounters.set(ingress, child);
    }
    return child;
  }

  /** `field` prefixes error messages with the failing push's position (e.g. "pushes[3]: ..."). */
  private async publishAll(reqs: readonly PushRequest[], field: string, keyPid: string | undefined): Promise<Published[]> {
    const plans = reqs.map((req, i): Plan => {
      try {
        this.validate(req);
        const pid = this.projects.resolvePid(req.pid ?? '', keyPid);
        const select = selectorOf(req);
        if (select !== undefined) return { pid, select, channels: selectorChannels(pid, select) };
        const options = this.history.options(pid, req.uid, req.topic);
        checkChannelLimit(req, options.maxPushBytes);
        return { pid, channels: [channelOf(pid, targetOf(req.uid, req.topic))], history: req.skipHistory ? undefined : options.history };
      } catch (err) {
        if (field && err instanceof PushwireError) throw new PushwireError(err.code, `${field}[${i}]: ${err.message}`);
        throw err;
      }
    });
    if (!this.bus.isReady()) throw new PushwireError(Code.UNAVAILABLE, 'cluster bus is unavailable');
    this.checkRates(plans.map((p) => p.pid));
    // Plain pushes to a channel with history are appended together, per channel, in one bus call
    // (Redis: one script call), unless one of the batch's other pushes shares the channel (an
    // idempotent, skip_history or targeted one): that channel's pushes then go one by one, in
    // order, so each channel keeps the batch's order.
    const single = new Set<string>();
    for (let i = 0; i < reqs.length; i++) {
      const plan = plans[i]!;
      if (plan.history === undefined || reqs[i]!.idempotencyKey) for (const c of plan.channels) single.add(c);
    }
    const now = Date.now();
    const outcomes: Published[] = new Array(reqs.length);
    const failures: unknown[] = [];
    const waits: Promise<void>[] = [];
    const groups = new Map<string, { group: AppendGroup; indexes: number[]; ids: string[] }>();
    for (let i = 0; i < reqs.length; i++) {
      const req = reqs[i]!;
      const plan = plans[i]!;
      const messageId = `${this.nodeId}-${this.bootTag}-${(++this.seq).toString(36)}`;
      const data = Buffer.isBuffer(req.data) ? req.data : Buffer.from(req.data.buffer, req.data.byteOffset, req.data.length);
      const payload = encodeMessage({ id: messageId, pid: plan.pid, uid: req.uid, topic: req.topic, data, publishedAt: now, select: plan.select, replyTo: req.replyTo || undefined });
      const channel = plan.channels[0]!;
      if (plan.history !== undefined && !req.idempotencyKey && !single.has(channel)) {
        let g = groups.get(channel);
        if (g === undefined) groups.set(channel, (g = { group: appendGroup(channel, plan.history), indexes: [], ids: [] }));
        g.group.payloads.push(payload);
        g.group.messageTtlMs.push((req.ttl ?? 0) * 1000);
        g.indexes.push(i);
        g.ids.push(messageId);
        continue;
      }
      // Issued before any await, in order, so the bus keeps each channel's order.
      waits.push(
        this.publishOne(req, plan, messageId, payload).then(
          (r) => void (outcomes[i] = r),
          (err: unknown) => void failures.push(err),
        ),
      );
    }
    if (groups.size > 0) {
      const list = [...groups.values()];
      const calls = this.bus.publishPositionedMany(list.map((g) => g.group));
      list.forEach((g, k) =>
        waits.push(
          calls[k]!.then(
            (first) => g.indexes.forEach((i, n) => (outcomes[i] = { messageId: g.ids[n]!, duplicate: false, offset: first.offset + n, epoch: first.epoch })),
            (err: unknown) => {
              for (let n = 0; n < g.indexes.length; n++) failures.push(err);
            },
          ),
        ),
      );
    }
    await Promise.all(waits);
    let published = 0;
    for (const r of outcomes) if (r !== undefined && !r.duplicate) published++;
    this.metrics.busPublished.inc(published);
    if (failures.length > 0) throw this.busFailure(failures, reqs.length);
    return outcomes;
  }

  /** One push published on its own: targeted, idempotent, positioned with a claim, or plain. */
  private async publishOne(req: PushRequest, plan: Plan, messageId: string, payload: Buffer): Promise<Published> {
    const { pid, channels, history } = plan;
    if (history !== undefined) {
      // One channel; the offset is assigned by the bus, atomically with the append and the publish.
      const append: AppendOptions = { size: history.size, ttlMs: history.ttlMs, metaTtlMs: history.metaTtlMs, messageTtlMs: (req.ttl ?? 0) * 1000 };
      if (req.idempotencyKey) append.once = { key: `${pid}/${req.idempotencyKey}`, value: messageId, ttlMs: this.idempotencyWindowMs };
      const r = await this.bus.publishPositioned(channels[0]!, payload, append);
      return r.duplicate ? { messageId: r.earlier, duplicate: true } : { messageId, duplicate: false, offset: r.offset, epoch: r.epoch };
    }
    if (!req.idempotencyKey) {
      // Every publish is issued before any await, so pushes keep their order on each channel.
      await allChannels(channels.map((channel) => this.bus.publish(channel, payload)));
      return { messageId, duplicate: false };
    }
    // Keys are per project: the same key in two projects names two pushes. The claim rides
    // on the first channel's publish; the other channels follow only when it was new.
    const [first, ...rest] = channels;
    const once = { key: `${pid}/${req.idempotencyKey}`, value: messageId, ttlMs: this.idempotencyWindowMs };
    const earlier = await this.bus.publishOnce(first!, payload, once);
    if (earlier !== undefined) return { messageId: earlier, duplicate: true };
    if (rest.length === 0) return { messageId, duplicate: false };
    try {
      await allChannels(rest.map((channel) => this.bus.publish(channel, payload)));
    } catch (err) {
      // The first channel has it (and the key is claimed): whatever failed after, the push is out.
      throw err instanceof BusUnconfirmedError ? err : new BusUnconfirmedError(`published to its first channel, then: ${(err as Error).message}`);
    }
    return { messageId, duplicate: false };
  }

  /**
   * The error for pushes whose publishes failed (`errors`, one per failed push, out of `n`):
   * UNAVAILABLE only when none of the `n` was sent, else DEADLINE_EXCEEDED.
   */
  private busFailure(errors: readonly unknown[], n: number): PushwireError {
    const unconfirmed = errors.filter((e) => e instanceof BusUnconfirmedError).length;
    this.metrics.busErrors.inc({ op: 'publish' }, errors.length - unconfirmed);
    if (unconfirmed > 0) this.metrics.busErrors.inc({ op: 'publish_unconfirmed' }, unconfirmed);
    const first = errors.find((e) => e instanceof BusUnconfirmedError) ?? errors[0];
    const why = (first as Error).message;
    if (n === 1) {
      return unconfirmed > 0
        ? new PushwireError(Code.DEADLINE_EXCEEDED, `push outcome unknown: ${why}; ${RETRY_HINT}`)
        : new PushwireError(Code.UNAVAILABLE, `cluster bus did not take the message: ${why}`);
    }
    if (unconfirmed === 0 && errors.length === n) {
      return new PushwireError(Code.UNAVAILABLE, `cluster bus did not take the ${n} messages: ${why}`);
    }
    return new PushwireError(
      Code.DEADLINE_EXCEEDED,
      `batch outcome unknown: ${errors.length} of ${n} messages not confirmed (${unconfirmed} sent without confirmation, ${errors.length - unconfirmed} not sent), the others published: ${why}; ${RETRY_HINT}`,
    );
  }

  /** Each project's pushes/s limit, per node; a batch takes one token per push, all or none. */
  private checkRates(pids: readonly string[]): void {
    const counts = new Map<string, number>();
    for (const pid of pids) counts.set(pid, (counts.get(pid) ?? 0) + 1);
    for (const [pid, n] of counts) this.checkRate(pid, n);
  }

  private checkRate(pid: string, n: number): void {
    const rate = this.projects.get(pid)?.limits.pushesPerSecond;
    if (rate !== undefined && !this.rates.take(pid, rate, n)) {
      this.metrics.limitRejections.inc({ pid, limit: 'pushes' }, n);
      throw new PushwireError(Code.RESOURCE_EXHAUSTED, `project "${pid}" is over its push rate (${rate}/s)`);
    }
  }

  private validate(req: PushRequest): void {
    checkOptionalName('uid', req.uid);
    checkOptionalName('topic', req.topic);
    const select = selectorOf(req);
    if (select !== undefined) {
      if (req.uid !== '' || req.topic !== '') throw invalidArgument('uid/topic cannot be combined with uids/cids/tags');
      for (const [field, list, problem] of [
        ['uids', select.uids, uidProblem],
        ['tags', select.tags, topicProblem],
        ['cids', select.cids, (c: string) => (nodeOfCid(c) === undefined ? 'not a connection id' : undefined)],
      ] as const) {
        if (list.length > MAX_SELECTOR_ENTRIES) throw invalidArgument(`${field} holds at most ${MAX_SELECTOR_ENTRIES} entries`);
        list.forEach((v, i) => {
          const why = problem(v);
          if (why) throw invalidArgument(`${field}[${i}]: ${why}`);
        });
      }
    }
    if (req.idempotencyKey && Buffer.byteLength(req.idempotencyKey) > MAX_IDEMPOTENCY_KEY_BYTES) {
      throw invalidArgument(`idempotency_key longer than ${MAX_IDEMPOTENCY_KEY_BYTES} bytes`);
    }
    if (req.replyTo && req.replyTo.length > MAX_REPLY_TO_LENGTH) {
      throw invalidArgument(`reply_to longer than ${MAX_REPLY_TO_LENGTH} characters`);
    }
    if (req.data.length > this.maxPushBytes) {
      throw invalidArgument(`data is ${req.data.length} bytes, more than the ${this.maxPushBytes} allowed`);
    }
  }
}
