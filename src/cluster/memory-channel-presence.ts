import { byClient, type ChannelEventHeads, type ChannelMember, type ChannelMembership, type ChannelPresence } from './channel-presence.js';

/**
 * Channel presence without Redis: a single node's (nothing to expire: the only node cannot die
 * without taking its presence and its subscribers with it, so no leave is owed), and the
 * `serve --workers` primary's store, from which the primary drops a worker's members itself
 * when the worker exits, sending the leaves owed (ipc-host.ts).
 */
export class MemoryChannelPresence implements ChannelPresence {
  private readonly channels = new Map<string, Map<string, ChannelMember>>();

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  add({ channel, member }: ChannelMembership): Promise<void> {
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
    for (const m of memberships) await this.add(m);
  }

  list(channel: string, _heads?: ChannelEventHeads): Promise<ChannelMember[]> {
    return Promise.resolve(byClient([...(this.channels.get(channel)?.values() ?? [])].map((m) => ({ ...m }))));
  }
}
