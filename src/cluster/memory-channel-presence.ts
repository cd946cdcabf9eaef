import { byClient, type ChannelMember, type ChannelMembership, type ChannelPresence } from './channel-presence.js';

/**
 * Channel presence without Redis: a single node's (nothing to expire: the only node cannot die
 * without taking its presence with it), and the `serve --workers` primary's store, which drops
 * a worker's members itself when the worker exits (ipc-host.ts).
 */
export class MemoryChannelPresence implements ChannelPresence {
  private readonly channels = new Map<string, Map<string, ChannelMember>>();

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  add(channel: string, member: ChannelMember): Promise<void> {
    let members = this.channels.get(channel);
    if (members === undefined) this.channels.set(channel, (members = new Map()));
    members.set(member.client, { client: member.client, user: member.user });
    return Promise.resolve();
  }

  remove(channel: string, client: string): Promise<void> {
    const members = this.channels.get(channel);
    if (members?.delete(client) && members.size === 0) this.channels.delete(channel);
    return Promise.resolve();
  }

  async refresh(memberships: readonly ChannelMembership[]): Promise<void> {
    for (const { channel, member } of memberships) await this.add(channel, member);
  }

  list(channel: string): Promise<ChannelMember[]> {
    return Promise.resolve(byClient([...(this.channels.get(channel)?.values() ?? [])].map((m) => ({ ...m }))));
  }
}
