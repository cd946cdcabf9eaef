import type { OnlineUsers } from '../../core/online-users.js';
import type { Logger } from '../../observability/logger.js';

/** ws-cluster's report size. */
export const REPORT_CHUNK = 1000;

/** What the report needs of a server connection. */
export interface ReportTarget {
  readonly pid: string;
  sendText(text: string): void;
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
    try {
      do {
        const page = await this.online.connections(pid, REPORT_CHUNK, token);
        token = page.nextPageToken;
        const payload = page.items.map((e) => ({ cid: e.cid, uid: e.uid, node: e.node }));
        const frame = JSON.stringify({ type: 'online', report_id: reportId, chunk: chunk++, last: token === '', time: Date.now(), payload });
        for (const t of targets) t.sendText(frame);
      } while (token !== '');
    } catch (err) {
      // The next round starts over; a server seeing no `last` chunk knows this one broke off.
      this.logger.warn({ err: (err as Error).message, pid }, 'online report failed');
    }
  }
}
