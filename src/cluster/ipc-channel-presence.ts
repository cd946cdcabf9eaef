import type { ChannelMember, ChannelMembership, ChannelPresence } from './channel-presence.js';
import type { IpcLink } from './ipc-link.js';

/**
 * Channel presence of a `serve --workers` worker without Redis: the primary (ipc-host.ts) holds
 * one store for every worker, so each answers for the whole machine, and drops a worker's
 * members when it exits (nothing to expire).
 */
export class IpcChannelPresence implements ChannelPresence {
  constructor(private readonly link: IpcLink) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async add(channel: string, member: ChannelMember): Promise<void> {
    await this.link.request('chanPresence.add', [channel, member]);
  }

  async remove(channel: string, client: string): Promise<void> {
    await this.link.request('chanPresence.remove', [channel, client]);
  }

  /** The primary's store cannot lose a member while its worker lives, and drops them when it exits: nothing to re-assert. */
  refresh(_memberships: readonly ChannelMembership[]): Promise<void> {
    return Promise.resolve();
  }

  list(channel: string): Promise<ChannelMember[]> {
    return this.link.request('chanPresence.list', [channel]) as Promise<ChannelMember[]>;
  }
}
