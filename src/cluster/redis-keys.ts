/**
 * Every Redis key and channel pushwire uses, in one place (docs/architecture.md, "Redis key
 * layout"). Keys a Lua script touches together share a hash tag, so on a Redis Cluster each
 * script runs on one slot; the publish a script makes goes to a channel in that same slot.
 *
 *   presence of a project   <p>presence:{<pid>}:conns|cids|users|counts|seq|user:<uid>|node:<id>|nodes|ver|sync:<id>
 *                           events on channel <p>presence:{<pid>}
 *   projects with presence  <p>presence:pids                      (alone; a cleanup index)
 *   node registry           <p>{nodes} and <p>{nodes}:info
 *   consumer directory      <p>be:{<pid>}:groups, <p>be:{<pid>}:g:<group>[:rr]
 *   consumer frames         standalone: the node's bus channel <p>n:<node>
 *                           cluster:    <p>be:{<pid>}:n:<node> (the directory's slot)
 *   bus channels            standalone: <p><channel>            cluster: <p>{<channel>}
 *   idempotency claims      standalone: <p>once:<pid>/<key>     cluster: <p>once:{<channel>}:<pid>/<key>
 *   history (reliable)      <p>h:{<channel>}, <p>hm:{<channel>}  (the bus channel's slot in cluster mode)
 *   channel presence (v1)   <p>cp:{<channel>}:m|x|j|l  (the bus channel's slot; its scripts publish there)
 */
export class RedisKeys {
  /** The publish command inside scripts and on the bus: sharded on a cluster. */
  readonly publish: 'PUBLISH' | 'SPUBLISH';

  constructor(
    readonly prefix: string,
    readonly cluster: boolean,
  ) {
    this.publish = cluster ? 'SPUBLISH' : 'PUBLISH';
  }

  /** The Redis channel of a core channel name. */
  busChannel(channel: string): string {
    return this.cluster ? `${this.prefix}{${channel}}` : this.prefix + channel;
  }

  /** The core channel name of a Redis bus channel (inverse of busChannel). */
  channelOfBus(redisChannel: Buffer): string {
    const start = Buffer.byteLength(this.prefix);
    return this.cluster ? redisChannel.toString('utf8', start + 1, redisChannel.length - 1) : redisChannel.toString('utf8', start);
  }

  /** An idempotency claim; on a cluster it lives in the slot of the channel it is published with. */
  onceKey(channel: string, key: string): string {
    return this.cluster ? `${this.prefix}once:{${channel}}:${key}` : `${this.prefix}once:${key}`;
  }

  /** A channel's presence (protocol v1 subscribers); its keys are this plus ":m", ":x", ":j", ":l". */
  channelPresence(channel: string): string {
    return `${this.prefix}cp:{${channel}}`;
  }

  /** A project's presence channel; its keys are this plus ":conns", ":expiry", ... */
  presence(pid: string): string {
    return `${this.prefix}presence:{${pid}}`;
  }

  get presencePids(): string {
    return `${this.prefix}presence:pids`;
  }

  get nodes(): string {
    return `${this.prefix}{nodes}`;
  }

  get nodesInfo(): string {
    return `${this.prefix}{nodes}:info`;
  }

  /** The consumer directory of a project: "<this>:groups", "<this>:g:<group>". */
  consumers(pid: string): string {
    return `${this.prefix}be:{${pid}}`;
  }

  /**
   * Where a project's consumer frames for a node go, minus the node id. Standalone: the
   * node's bus channel. Cluster: a per-project channel in the directory's slot (a script may
   * only publish within its slot), which a node subscribes while it has consumers of the project.
   */
  consumerFramePrefix(pid: string, nodeChannelPrefix: string): string {
    return this.cluster ? `${this.consumers(pid)}:n:` : this.busChannel(nodeChannelPrefix);
  }
}
