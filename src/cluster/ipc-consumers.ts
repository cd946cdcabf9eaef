import type { ConsumerDirectory, ConsumerEntry } from './consumers.js';
import type { IpcLink } from './ipc-link.js';

/**
 * The consumer directory of a `serve --workers` worker without Redis: one directory in the
 * primary for all workers, whose consumer frames reach the chosen worker over its node channel
 * like any bus message. The primary forgets a worker's registrations when it exits.
 */
export class IpcConsumers implements ConsumerDirectory {
  constructor(private readonly link: IpcLink) {}

  async register(entries: readonly ConsumerEntry[], ttlMs: number): Promise<void> {
    await this.link.request('consumers.register', [entries, ttlMs]);
  }

  async unregister(entry: ConsumerEntry): Promise<void> {
    await this.link.request('consumers.unregister', [entry]);
  }

  dispatch(pid: string, event: Buffer, sticky: number | undefined, group?: string): Promise<number> {
    return this.link.request('consumers.dispatch', [pid, event, sticky, group]) as Promise<number>;
  }

  onReconnect(): void {
    // The primary outlives its workers: the directory is never lost under a live worker.
  }

  onFrame(): void {
    // Frames come through the IpcBus, on the worker's node channel.
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
