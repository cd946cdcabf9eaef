/** One subscription of a protocol v1 client to a channel with presence (ClientInfo in client.proto). */
export interface ChannelMember {
  /** Connection id (cid). */
  client: string;
  /** Its uid; empty when anonymous. */
  user: string;
}

/** A member as this node recorded it: the channel (core channel name) it holds. */
export interface ChannelMembership {
  channel: string;
  member: ChannelMember;
}

/**
 * Who is subscribed to a channel, cluster-wide (the v1 `presence` command, namespace option
 * `presence`). Writes come from the node holding the connection, and every entry carries an
 * expiry that its node refreshes (every ttl/3), so the entries of a node that dies without
 * cleaning up drop out within the TTL. Nothing scans the store: a read touches one channel.
 */
export interface ChannelPresence {
  start(): Promise<void>;
  close(): Promise<void>;
  add(channel: string, member: ChannelMember): Promise<void>;
  remove(channel: string, client: string): Promise<void>;
  /** Re-asserts this node's memberships (re-adding any the store lost) and pushes their expiry back. */
  refresh(memberships: readonly ChannelMembership[]): Promise<void>;
  /** The channel's live members (expired ones left out and removed), in client id order. */
  list(channel: string): Promise<ChannelMember[]>;
}

/** Members in client id order (bytewise, as Redis sorts them), so every store answers alike. */
export function byClient(members: ChannelMember[]): ChannelMember[] {
  return members.sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
}
