import type { Bus } from './bus.js';
import { encodeConsumerFrame, type ConsumerDirectory, type ConsumerEntry } from './consumers.js';

/** Single-node directory: the same semantics as Redis, consumer frames through the in-process bus. */
export class MemoryConsumers implements ConsumerDirectory {
  /** pid → group → member ("node|id") → expiry ms. */
  private readonly groups = new Map<string, Map<string, Map<string, number>>>();
  private readonly rotation = new Map<string, number>();

  constructor(
    /** Only publish is used: the `serve --workers` primary passes its router. */
    private readonly bus: Pick<Bus, 'publish'>,
    /** The bus channel a node hears (the core's naming). */
    private readonly nodeChannel: (node: string) => string,
  ) {}

  register(entries: readonly ConsumerEntry[], ttlMs: number): Promise<void> {
    const expires = Date.now() + ttlMs;
    for (const e of entries) {
      let byGroup = this.groups.get(e.pid);
      if (byGroup === undefined) this.groups.set(e.pid, (byGroup = new Map()));
      let members = byGroup.get(e.group);
      if (members === undefined) byGroup.set(e.group, (members = new Map()));
      members.set(`${e.node}|${e.id}`, expires);
    }
    return Promise.resolve();
  }

  unregister(e: ConsumerEntry): Promise<void> {
    const byGroup = this.groups.get(e.pid);
    const members = byGroup?.get(e.group);
    members?.delete(`${e.node}|${e.id}`);
    if (members?.size === 0) byGroup!.delete(e.group);
    if (byGroup?.size === 0) this.groups.delete(e.pid);
    return Promise.resolve();
  }

  async dispatch(pid: string, event: Buffer, sticky: number | undefined, only?: string): Promise<number> {
    const now = Date.now();
    let reached = 0;
    for (const [group, members] of this.groups.get(pid) ?? []) {
      if (only !== undefined && group !== only) continue;
      for (const [m, expires] of members) if (expires <= now) members.delete(m);
      const live = [...members.keys()].sort();
      if (live.length === 0) continue;
      const key = `${pid}\n${group}`;
      const turn = sticky ?? (this.rotation.get(key) ?? 0) + 1;
      if (sticky === undefined) this.rotation.set(key, turn);
      const member = live[turn % live.length]!;
      const sep = member.indexOf('|');
      await this.bus.publish(this.nodeChannel(member.slice(0, sep)), encodeConsumerFrame(member.slice(sep + 1), group, event));
      reached++;
    }
    return reached;
  }

  onReconnect(): void {
    // Never disconnected.
  }

  onFrame(): void {
    // Every frame comes through the bus, on the node channel.
  }

  close(): Promise<void> {
    this.groups.clear();
    return Promise.resolve();
  }
}
