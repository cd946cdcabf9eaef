import type { Bus } from '../cluster/bus.js';
import type { Metrics } from '../observability/metrics.js';
import { CODE_NAMES, Code, PushwireError, invalidArgument } from './errors.js';
import { encodeMessage } from './message.js';
import type { ProjectRegistry } from './projects/registry.js';
import { checkOptionalName } from './names.js';
import { channelOf, targetOf } from './targeting.js';

export interface PushRequest {
  uid: string;
  topic: string;
  data: Uint8Array;
  /** Requested project; empty: the caller key's project, or the default project. */
  pid?: string;
}

export interface PushResult {
  messageId: string;
  nodeId: string;
}

export interface PushBatchResult {
  messageIds: string[];
  nodeId: string;
}

/** Most pushes one batch call may carry. */
export const MAX_BATCH_PUSHES = 1000;

/**
 * The one push use case behind every ingress: validate, stamp, publish to the bus.
 * A push the bus does not accept is UNAVAILABLE, never a silent drop.
 */
export class Publisher {
  private seq = 0;
  // Ids stay unique across restarts of a node that keeps its --node-id.
  private readonly bootTag = Date.now().toString(36);

  constructor(
    private readonly bus: Bus,
    private readonly projects: ProjectRegistry,
    private readonly nodeId: string,
    private readonly maxPushBytes: number,
    private readonly metrics: Metrics,
  ) {}

  /**
   * `ingress` names the caller's transport for the pushes metric (grpc, http); `keyPid` is the
   * project of the caller's API key (undefined on an open API).
   */
  async push(req: PushRequest, ingress: string, keyPid?: string): Promise<PushResult> {
    const [messageId] = await this.counted(ingress, 1, () => this.publishAll([req], '', keyPid));
    return { messageId: messageId!, nodeId: this.nodeId };
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
    const messageIds = await this.counted(ingress, reqs.length, () => this.publishAll(reqs, 'pushes', keyPid));
    return { messageIds, nodeId: this.nodeId };
  }

  /** Runs `work`, counting `n` pushes under its outcome. */
  private async counted<T>(ingress: string, n: number, work: () => Promise<T>): Promise<T> {
    try {
      const result = await work();
      this.okCounter(ingress).inc(n);
      return result;
    } catch (err) {
      const code = err instanceof PushwireError ? err.code : Code.INTERNAL;
      this.metrics.pushes.inc({ ingress, result: CODE_NAMES[code] }, n);
      throw err;
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
  private async publishAll(reqs: readonly PushRequest[], field: string, keyPid: string | undefined): Promise<string[]> {
    const pids = reqs.map((req, i) => {
      try {
        this.validate(req);
        return this.projects.resolvePid(req.pid ?? '', keyPid);
      } catch (err) {
        if (field && err instanceof PushwireError) throw new PushwireError(err.code, `${field}[${i}]: ${err.message}`);
        throw err;
      }
    });
    if (!this.bus.isReady()) throw new PushwireError(Code.UNAVAILABLE, 'cluster bus is unavailable');
    const now = Date.now();
    const messageIds: string[] = [];
    // Issued together so the bus can pipeline them; it keeps their order.
    const published = reqs.map((req, i) => {
      const id = `${this.nodeId}-${this.bootTag}-${(++this.seq).toString(36)}`;
      messageIds.push(id);
      const pid = pids[i]!;
      const data = Buffer.isBuffer(req.data) ? req.data : Buffer.from(req.data.buffer, req.data.byteOffset, req.data.length);
      const payload = encodeMessage({ id, pid, uid: req.uid, topic: req.topic, data, publishedAt: now });
      return this.bus.publish(channelOf(pid, targetOf(req.uid, req.topic)), payload);
    });
    const results = await Promise.allSettled(published);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    this.metrics.busPublished.inc(results.length - failed.length);
    if (failed.length > 0) {
      this.metrics.busErrors.inc({ op: 'publish' }, failed.length);
      const what = reqs.length === 1 ? 'the message' : `${failed.length} of ${reqs.length} messages`;
      throw new PushwireError(Code.UNAVAILABLE, `cluster bus rejected ${what}: ${(failed[0]!.reason as Error).message}`);
    }
    return messageIds;
  }

  private validate(req: PushRequest): void {
    checkOptionalName('uid', req.uid);
    checkOptionalName('topic', req.topic);
    if (req.data.length > this.maxPushBytes) {
      throw invalidArgument(`data is ${req.data.length} bytes, more than the ${this.maxPushBytes} allowed`);
    }
  }
}
