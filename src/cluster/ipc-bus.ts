import { BusRefusedError, type AppendGroup, type AppendOptions, type AppendResult, type Bus, type OnceKey, type Position, type RangeQuery, type StoredRange } from './bus.js';
import type { IpcLink } from './ipc-link.js';

/** The IPC serializer hands Buffers over as Buffers; a plain Uint8Array is wrapped without a copy. */
export const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Publishes not yet written to the primary beyond this fail at once (UNAVAILABLE), like Redis's bound. */
const MAX_UNSENT_PUBLISHES = 50_000;

/**
 * The bus of one `serve --workers` worker without Redis: the primary (ipc-host.ts) routes
 * each message to every worker subscribed to its channel, this one included. A turn's
 * publishes leave in one IPC message, in order; each resolves once that message is written
 * to the pipe, i.e. handed to the only router there is. A publish the pipe refuses (the
 * primary gone) or over the unsent bound rejects: "not sent", the push answers UNAVAILABLE.
 */
export class IpcBus implements Bus {
  private handler: (channel: string, payload: Buffer) => void = () => {};
  private batch: Array<[string, Buffer]> = [];
  private waiting: Array<{ resolve(): void; reject(e: Error): void }> = [];
  private unsent = 0;

  constructor(private readonly link: IpcLink) {
    link.on('msgs', (m) => {
      for (const [channel, payload] of m.list as Array<[string, Uint8Array]>) this.handler(channel, asBuffer(payload));
    });
  }

  publish(channel: string, payload: Buffer): Promise<void> {
    if (!this.link.connected) return Promise.reject(new BusRefusedError('the workers primary is gone'));
    if (this.unsent >= MAX_UNSENT_PUBLISHES) return Promise.reject(new BusRefusedError('too many publishes waiting for the workers primary'));
    if (this.batch.length === 0) setImmediate(() => this.flush());
    this.batch.push([channel, payload]);
    this.unsent++;
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async publishOnce(channel: string, payload: Buffer, once: OnceKey): Promise<string | undefined> {
    // Claim and publish happen in one step in the primary, so a duplicate is never published.
    const value = await this.link.request('publishOnce', [channel, payload, once]);
    return value === null ? undefined : (value as string);
  }

  /** Offsets are assigned by the primary, which stores and routes in one step (ipc-host.ts). */
  async publishPositioned(channel: string, payload: Buffer, options: AppendOptions): Promise<AppendResult> {
    if (!this.link.connected) throw new BusRefusedError('the workers primary is gone');
    return (await this.link.request('publishPositioned', [channel, payload, options])) as AppendResult;
  }

  /** One request for all the groups: the primary stores and routes them in one step. */
  publishPositionedMany(groups: readonly AppendGroup[]): Promise<Position>[] {
    if (groups.length === 0) return [];
    const call = this.link.connected ? (this.link.request('publishPositionedMany', [groups]) as Promise<Position[]>) : Promise.reject(new BusRefusedError('the workers primary is gone'));
    return groups.map((_, i) => call.then((positions) => positions[i]!));
  }

  async readHistory(channel: string, query: RangeQuery): Promise<StoredRange> {
    const range = (await this.link.request('readHistory', [channel, query])) as StoredRange;
    return { ...range, entries: range.entries.map((e) => ({ ...e, payload: asBuffer(e.payload) })) };
  }

  async removeHistory(channel: string): Promise<void> {
    await this.link.request('removeHistory', [channel]);
  }

  subscribe(channel: string): Promise<void> {
    // A lost pipe means the primary is gone, and with it this worker: nothing to remember.
    this.link.send({ pw: 'sub', c: channel }).catch(() => {});
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.link.send({ pw: 'unsub', c: channel }).catch(() => {});
    return Promise.resolve();
  }

  onMessage(handler: (channel: string, payload: Buffer) => void): void {
    this.handler = handler;
  }

  onGap(): void {
    // The pipe to the primary loses nothing while it is up, and the worker exits with it: no gaps.
  }

  isReady(): boolean {
    return this.link.connected;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.flush();
    return Promise.resolve();
  }

  private flush(): void {
    if (this.batch.length === 0) return;
    const list = this.batch;
    const waiting = this.waiting;
    this.batch = [];
    this.waiting = [];
    const done = (): void => {
      this.unsent -= list.length;
    };
    this.link.send({ pw: 'pubs', list }).then(
      () => {
        done();
        for (const w of waiting) w.resolve();
      },
      (err: Error) => {
        done();
        // The pipe refused the write: the primary never got these (a worker without its primary is exiting).
        const refused = new BusRefusedError(err.message);
        for (const w of waiting) w.reject(refused);
      },
    );
  }
}
