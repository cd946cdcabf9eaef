import { memberEventFrame, type ChannelEventHeads, type ChannelMember, type ChannelMembership, type ChannelPresence } from './channel-presence.js';
import type { IpcLink } from './ipc-link.js';

/**
 * Channel presence of a `serve --workers` worker without Redis: the primary (ipc-host.ts) holds
 * one store for every worker, so each answers for the whole machine. The primary drops a
 * worker's members when it exits (nothing to expire), and publishes the leave frame that came
 * with each joinLeave member's add, so a crashed worker's subscribers leave once, at its exit.
 */
export class IpcChannelPresence implements ChannelPresence {
  constructor(private readonly link: IpcLink) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async add(m: ChannelMembership): Promise<void> {
    await this.link.request('chanPresence.add', [m.channel, m.member, m.joinLeave ? memberEventFrame(m.heads.leave, m.member) : null]);
  }

  async remove(channel: string, client: string): Promise<void> {
    await this.link.request('chanPresence.remove', [channel, client]);
  }

  /** The primary's store cannot lose a member while its worker lives, and drops them when it exits: nothing to re-assert. */
  refresh(_memberships: readonly ChannelMembership[]): Promise<void> {
    return Promise.resolve();
  }

  list(channel: string, _heads?: ChannelEventHeads): Promise<ChannelMember[]> {
    return this.link.request('chanPresence.list', [channel]) as Promise<ChannelMember[]>;
  }
}
