/**
 * Which projects have backend consumers anywhere in the cluster, so a node sends a
 * connection's connect/disconnect event to the consumer directory (a Redis script each) only
 * for projects that have one: a reconnect storm of a project without backends costs no
 * directory work at all.
 *
 * Nodes holding consumers announce their projects on one bus channel when a project gets its
 * first local consumer and on every registration refresh (--consumer-ttl/3); every node
 * listens. A project is "with consumers" until --consumer-ttl after its last announcement.
 * Conservative where it cannot know: for the first --consumer-ttl after start (announcements
 * made before it subscribed), while the bus is down and for a --consumer-ttl after it is back
 * or may have lost announcements (gap), every project counts as having consumers. A consumer attached on
 * another node gets connection events from about one bus hop after its attach call returned.
 */
export const SIGNAL_CHANNEL = 'c:consumers';

/** Announcement frames share the bus with envelopes (versions 1-15) and consumer frames (0xb0). */
export const SIGNAL_FRAME = 0xb1;

export const isSignalFrame = (frame: Buffer): boolean => frame.length > 0 && frame[0] === SIGNAL_FRAME;

/** Marker byte, then the pids joined by "\n" (a pid never contains one). */
export function encodeSignal(pids: readonly string[]): Buffer {
  const body = Buffer.from(pids.join('\n'));
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = SIGNAL_FRAME;
  body.copy(out, 1);
  return out;
}

export function decodeSignal(frame: Buffer): string[] {
  if (!isSignalFrame(frame)) throw new Error('not a consumer signal frame');
  return frame.length === 1 ? [] : frame.toString('utf8', 1).split('\n');
}

export class ConsumerSignal {
  /** pid → until when it counts as having consumers (ms). */
  private readonly known = new Map<string, number>();
  /** Until when every project counts as having consumers (start, gap). */
  private unsureUntil: number;
  private wasDown = false;

  constructor(
    private readonly ttlMs: number,
    /** While the bus is down announcements cannot arrive: every project counts as having consumers. */
    private readonly busReady: () => boolean = () => true,
    private readonly now: () => number = Date.now,
  ) {
    this.unsureUntil = now() + ttlMs;
  }

  /** Whether a connection event of `pid` may have a consumer to go to. */
  mayHaveConsumers(pid: string): boolean {
    const t = this.now();
    if (t < this.unsureUntil) return true;
    if (!this.busReady()) {
      this.wasDown = true;
      return true;
    }
    if (this.wasDown) {
      // Back from an outage: announcements made meanwhile were lost; they come again within a refresh.
      this.wasDown = false;
      this.unsureUntil = t + this.ttlMs;
      return true;
    }
    const until = this.known.get(pid);
    if (until === undefined) return false;
    if (until > t) return true;
    this.known.delete(pid);
    return false;
  }

  /** An announcement arrived (from any node, this one included). */
  receive(frame: Buffer): void {
    const until = this.now() + this.ttlMs;
    for (const pid of decodeSignal(frame)) this.known.set(pid, until);
  }

  /** The bus may have lost announcements. */
  gap(): void {
    this.unsureUntil = this.now() + this.ttlMs;
  }
}
