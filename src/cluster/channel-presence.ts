/** One subscription of a protocol v1 client to a channel with presence (ClientInfo in client.proto). */
export interface ChannelMember {
  /** Connection id (cid). */
  client: string;
  /** Its uid; empty when anonymous. */
  user: string;
}

/**
 * The join and leave frames of the channel's members, minus the member: a member's frame is
 * `join` (or `leave`) followed by its client and its user, each as a big-endian u16 byte length
 * and the UTF-8 bytes (memberEventFrame). Built by the core (core/channel-events.ts) and opaque
 * to a store, which only appends a member to publish, on the channel itself, the leave of a
 * member it drops without its node (a dead node's or worker's) and the join of one it takes back.
 */
export interface ChannelEventHeads {
  join: Buffer;
  leave: Buffer;
}

/** A member as this node recorded it: the channel (core channel name) it holds. */
export interface ChannelMembership {
  channel: string;
  member: ChannelMember;
  /** The channel's event frames (the same for every member of the channel). */
  heads: ChannelEventHeads;
  /** Its leave is owed to the channel (namespace option joinLeave at subscribe). */
  joinLeave: boolean;
}

/**
 * Who is subscribed to a channel, cluster-wide (the v1 `presence` command, namespace option
 * `presence`; members of joinLeave-only namespaces are recorded too, so that their leave is
 * not lost with their node). Writes come from the node holding the connection, and every entry
 * carries an expiry that its node refreshes (every ttl/3), so the entries of a node that dies
 * without cleaning up drop out within the TTL, and the store publishes their leaves (once per
 * member). Nothing scans the store: a read touches one channel.
 */
export interface ChannelPresence {
  start(): Promise<void>;
  close(): Promise<void>;
  add(membership: ChannelMembership): Promise<void>;
  remove(channel: string, client: string): Promise<void>;
  /**
   * Re-asserts this node's memberships (re-adding any the store lost) and pushes their expiry
   * back; drops the channels' expired members on the way, however many (bounded work per call).
   */
  refresh(memberships: readonly ChannelMembership[]): Promise<void>;
  /** The channel's live members (expired ones left out and removed), in client id order. */
  list(channel: string, heads: ChannelEventHeads): Promise<ChannelMember[]>;
}

/** Members in client id order (bytewise, as Redis sorts them), so every store answers alike. */
export function byClient(members: ChannelMember[]): ChannelMember[] {
  return members.sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
}

/** `head` + the member's client and user (u16-length UTF-8): the member's join or leave frame. */
export function memberEventFrame(head: Buffer, member: ChannelMember): Buffer {
  const c = Buffer.byteLength(member.client);
  const u = Buffer.byteLength(member.user);
  const out = Buffer.allocUnsafe(head.length + 4 + c + u);
  head.copy(out, 0);
  let o = head.length;
  out.writeUInt16BE(c, o);
  out.write(member.client, o + 2);
  o += 2 + c;
  out.writeUInt16BE(u, o);
  out.write(member.user, o + 2);
  return out;
}
