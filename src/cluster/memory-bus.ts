import { wrapPositioned, type AppendGroup, type AppendOptions, type AppendResult, type Bus, type OnceKey, type Position, type RangeQuery, type StoredRange } from './bus.js';
import { MemoryHistory } from './memory-history.js';

/** In-process bus for a single node: the same interface, no network. */
export class MemoryBus implements Bus {
  private readonly channels = new Set<string>();
  private handler: (channel: string, payload: Buffer) => void = () => {};
  private readonly claims = new Map<string, { value: string; expires: number }>();
  private sweeps = 0;
  private readonly history = new MemoryHistory();

  publish(channel: string, payload: Buffer): Promise<void> {
    // Deliver on a microtask, like a real bus: the caller's ack never waits on fan-out.
    if (this.channels.has(channel)) queueMicrotask(() => this.handler(channel, payload));
    return Promise.resolve();
  }

  publishOnce(channel: string, payload: Buffer, once: OnceKey): Promise<string | undefined> {
    const now = Date.now();
    // Expired claims are swept now and then, so the map stays bounded by the window's traffic.
    if (++this.sweeps % 1024 === 0) for (const [k, c] of this.claims) if (c.expires <= now) this.claims.delete(k);
    const claim = this.claims.get(once.key);
    if (claim !== undefined && claim.expires > now) return Promise.resolve(claim.value);
    this.claims.set(once.key, { value: once.value, expires: now + once.ttlMs });
    return this.publish(channel, payload).then(() => undefined);
  }

  publishPositioned(channel: string, payload: Buffer, options: AppendOptions): Promise<AppendResult> {
    const { once } = options;
    if (once !== undefined) {
      const now = Date.now();
      const claim = this.claims.get(once.key);
      if (claim !== undefined && claim.expires > now) return Promise.resolve({ duplicate: true, earlier: claim.value });
      this.claims.set(once.key, { value: once.value, expires: now + once.ttlMs });
    }
    // Assigned and delivered in one synchronous step: offset order is delivery order.
    const position = this.history.append(channel, payload, options);
    void this.publish(channel, wrapPositioned(position, payload));
    return Promise.resolve({ duplicate: false, ...position });
  }

  publishPositionedMany(groups: readonly AppendGroup[]): Promise<Position>[] {
    return groups.map((g) => {
      let first: Position | undefined;
      g.payloads.forEach((payload, i) => {
        const position = this.history.append(g.channel, payload, { size: g.size, ttlMs: g.ttlMs, metaTtlMs: g.metaTtlMs, messageTtlMs: g.messageTtlMs[i] ?? 0 });
        void this.publish(g.channel, wrapPositioned(position, payload));
        first ??= position;
      });
      return Promise.resolve(first!);
    });
  }

  readHistory(channel: string, query: RangeQuery): Promise<StoredRange> {
    return Promise.resolve(this.history.read(channel, query));
  }

  removeHistory(channel: string): Promise<void> {
    this.history.remove(channel);
    return Promise.resolve();
  }

  subscribe(channel: string): Promise<void> {
    this.channels.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel);
    return Promise.resolve();
  }

  onMessage(handler: (channel: string, payload: Buffer) => void): void {
    this.handler = handler;
  }

  onGap(): void {
    // In-process delivery loses nothing: there is never a gap to report.
  }

  isReady(): boolean {
    return true;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.channels.clear();
    this.claims.clear();
    this.history.clear();
    return Promise.resolve();
  }
}
