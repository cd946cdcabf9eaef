import type { Flushable, Flusher } from './flusher.js';

/**
 * When one connection's queued frames are written; shared by the legacy and the v1 connection
 * so both honour the project's write delay the same way. A delivery (`delayable`) of a project
 * with a write delay waits up to that long for others to share the write; anything else
 * (replies, pongs, errors) is written at the end of this turn, taking the waiting deliveries
 * along, so order is kept and replies are never delayed.
 */
export class WriteSchedule {
  /** With the Flusher: no, for the end of this turn, or for the project's write delay. */
  private state: 'no' | 'turn' | 'delay' = 'no';

  constructor(
    private readonly conn: Flushable,
    private readonly flusher: Flusher,
    /** The project's write delay, ms, looked up per delivery: a projects reload may change it. */
    private readonly delayMs: () => number,
  ) {}

  /** A frame was queued. */
  queued(delayable: boolean): void {
    if (this.state === 'turn') return;
    if (delayable) {
      if (this.state === 'delay') return;
      const delay = this.delayMs();
      if (delay > 0) {
        this.state = 'delay';
        this.flusher.scheduleAfter(this.conn, delay);
        return;
      }
    }
    this.state = 'turn';
    this.flusher.schedule(this.conn);
  }

  /** The connection was flushed: the next frame schedules again. */
  flushed(): void {
    this.state = 'no';
  }
}
