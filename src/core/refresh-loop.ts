/**
 * Runs `task` now, then every `periodMs` measured from the start of each run, never two at once.
 * A run still going when the next is due (Redis slow or timing out, the event loop starved of
 * CPU) delays that next run only until it ends: it then starts at once. A fixed interval that
 * skips the ticks a run overlaps would instead add up to a whole period to the gap after every
 * slow run, and with expiry-based liveness that gap is what the rest of the cluster sees.
 */
export class RefreshLoop {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly periodMs: number,
    /** Errors are the task's to report; a rejection is ignored here. */
    private readonly task: () => Promise<void>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(): void {
    this.run();
  }

  /** The first run one period from now. */
  startLater(): void {
    this.timer = setTimeout(() => this.run(), this.periodMs);
    this.timer.unref();
  }

  /** No run starts after this (one in flight finishes). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private run(): void {
    if (this.stopped) return;
    const started = this.now();
    let run: Promise<void>;
    try {
      run = this.task();
    } catch (err) {
      run = Promise.reject(err);
    }
    void run
      .catch(() => {})
      .finally(() => {
        if (this.stopped) return;
        const wait = started + this.periodMs - this.now();
        if (wait <= 0) return this.run(); // overdue: now, not after another trip through the timers
        this.timer = setTimeout(() => this.run(), wait);
        this.timer.unref();
      });
  }
}
