import type { OnlineUsers } from '../../core/online-users.js';
import type { Logger } from '../../observability/logger.js';

/** ws-cluster's report size. */
export const REPORT_CHUNK = 1000;

/** How long a report waits for a server connection to drain before leaving it out of this round. */
const DRAIN_WAIT_MS = 5000;

/** What the report needs of a server connection. */
export interface ReportTarget {
  readonly pid: string;
  sendText(text: string): void;
  /** Bytes queued on the connection and not yet taken by the kernel. */
  backlog(): number;
}

/**
 * ws-cluster's periodic online report for server connections: every interval, each project's
 * logged-in connections (cid, uid, node), cluster-wide, in chunks of at most 1000 frames of
 * `{"type":"online","report_id":..,"chunk":i,"last":bool,"time":ms,"payload":[...]}`.
 * A project's list is read once per round however many of its servers this node holds.
 */
export class OnlineReporter {
  private timer: NodeJS.Timeout | undefined;
  private rounds = 0;
  private running = false;

  constructor(
    private readonly online: OnlineUsers,
    private readonly nodeId: string,
    private readonly intervalMs: number,
    private readonly targets: () => Iterable<ReportTarget>,
    private readonly logger: Logger,
    /**
     * A chunk goes to a connection only below this backlog (half its queue limit), so a large
     * report never closes a server on a slower link as a slow consumer; one still behind after
     * a while misses the rest of this round's report (it never gets a partial one flagged last).
     */
    private readonly maxBacklog: number,
    private readonly drainWaitMs = DRAIN_WAIT_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.round(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One report to every server connection; skipped while the previous one is still being read. */
  async round(): Promise<void> {
    if (this.running) return;
    const byPid = new Map<string, ReportTarget[]>();
    for (const t of this.targets()) byPid.set(t.pid, [...(byPid.get(t.pid) ?? []), t]);
    if (byPid.size === 0) return;
    this.running = true;
    try {
      for (const [pid, targets] of byPid) await this.report(pid, targets);
    } finally {
      this.running = false;
    }
  }

  private async report(pid: string, targets: readonly ReportTarget[]): Promise<void> {
    const reportId = `${this.nodeId}-${(++this.rounds).toString(36)}`;
    let token = '';
    let chunk = 0;
    let live = [...targets];
    try {
      do {
        const page = await this.online.connections(pid, REPORT_CHUNK, token);
        token = page.nextPageToken;
        const payload = page.items.map((e) => ({ cid: e.cid, uid: e.uid, node: e.node }));
        const frame = JSON.stringify({ type: 'online', report_id: reportId, chunk: chunk++, last: token === '', time: Date.now(), payload });
        live = await this.drained(live);
        for (const t of live) t.sendText(frame);
      } while (token !== '' && live.length > 0);
    } catch (err) {
      // The next round starts over; a server seeing no `last` chunk knows this one broke off.
      this.logger.warn({ err: (err as Error).message, pid }, 'online report failed');
    }
  }

  /** The targets that can take another chunk, after waiting (bounded) for the others to drain. */
  private async drained(targets: ReportTarget[]): Promise<ReportTarget[]> {
    const deadline = Date.now() + this.drainWaitMs;
    while (targets.some((t) => t.backlog() > this.maxBacklog) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const ready = targets.filter((t) => t.backlog() <= this.maxBacklog);
    if (ready.length < targets.length) this.logger.debug({ skipped: targets.length - ready.length }, 'online report skipped servers that are behind');
    return ready;
  }
}
