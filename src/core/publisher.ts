import type { Bus } from '../cluster/bus.js';
import type { Metrics } from '../observability/metrics.js';
import { CODE_NAMES, Code, PushwireError, invalidArgument } from './errors.js';
import { encodeMessage } from './message.js';
import { checkOptionalName } from './names.js';
import { channelOf, targetOf } from './targeting.js';

export interface PushRequest {
  uid: string;
  topic: string;
  data: Uint8Array;
}

export interface PushResult {
  messageId: string;
  nodeId: string;
}

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
    private readonly nodeId: string,
    private readonly maxPushBytes: number,
    private readonly metrics: Metrics,
  ) {}

  /** `ingress` names the caller's transport for the pushes metric (grpc, http). */
  async push(req: PushRequest, ingress: string): Promise<PushResult> {
    try {
      const result = await this.publish(req);
      this.okCounter(ingress).inc();
      return result;
    } catch (err) {
      const code = err instanceof PushwireError ? err.code : Code.INTERNAL;
      this.metrics.pushes.inc({ ingress, result: CODE_NAMES[code] });
      throw err;
    }
  }

  // Labelled children cached per ingress: a label lookup per push is measurable at ingress rates.
  private readonly okCounters = new Map<string, { inc(): void }>();

  private okCounter(ingress: string): { inc(): void } {
    let child = this.okCounters.get(ingress);
    if (child === undefined) {
      child = this.metrics.pushes.labels({ ingress, result: 'ok' });
      this.okCounters.set(ingress, child);
    }
    return child;
  }

  private async publish(req: PushRequest): Promise<PushResult> {
    checkOptionalName('uid', req.uid);
    checkOptionalName('topic', req.topic);
    if (req.data.length > this.maxPushBytes) {
      throw invalidArgument(`data is ${req.data.length} bytes, more than the ${this.maxPushBytes} allowed`);
    }
    if (!this.bus.isReady()) throw new PushwireError(Code.UNAVAILABLE, 'cluster bus is unavailable');
    const messageId = `${this.nodeId}-${this.bootTag}-${(++this.seq).toString(36)}`;
    const data = Buffer.isBuffer(req.data) ? req.data : Buffer.from(req.data.buffer, req.data.byteOffset, req.data.length);
    const payload = encodeMessage({ id: messageId, uid: req.uid, topic: req.topic, data, publishedAt: Date.now() });
    try {
      await this.bus.publish(channelOf(targetOf(req.uid, req.topic)), payload);
    } catch (err) {
      this.metrics.busErrors.inc({ op: 'publish' });
      throw new PushwireError(Code.UNAVAILABLE, `cluster bus rejected the message: ${(err as Error).message}`);
    }
    this.metrics.busPublished.inc();
    return { messageId, nodeId: this.nodeId };
  }
}
