import { Metadata, credentials, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { BackendServiceClient, type ClientEvent } from '../../gen/pushwire/v1/backend.js';

/**
 * A BackendService.Connect stream as a test consumer: records every event; `ready` resolves
 * once the node registered it (response headers), `ended` with the stream's final status.
 */
export class TestConsumer {
  readonly events: ClientEvent[] = [];
  readonly ready: Promise<void>;
  readonly ended: Promise<ServiceError | undefined>;
  private cursor = 0;
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly client: BackendServiceClient,
    readonly stream: ClientReadableStream<ClientEvent>,
  ) {
    this.ready = new Promise((resolve, reject) => {
      stream.once('metadata', () => resolve());
      stream.once('error', reject);
    });
    this.ended = new Promise((resolve) => {
      stream.on('error', (err: ServiceError) => resolve(err));
      stream.on('end', () => resolve(undefined));
    });
    void this.ended.then(() => this.wake());
    stream.on('data', (e: ClientEvent) => {
      this.events.push(e);
      this.wake();
    });
  }

  /** Connects as a consumer of (pid, group); resolves once registered (or rejects with the error). */
  static async connect(address: string, req: { pid?: string; group?: string } = {}, key?: string): Promise<TestConsumer> {
    const client = new BackendServiceClient(address, credentials.createInsecure());
    const md = new Metadata();
    if (key !== undefined) md.set('authorization', `Bearer ${key}`);
    const c = new TestConsumer(client, client.connect({ pid: req.pid ?? '', group: req.group ?? '' }, md));
    try {
      await c.ready;
    } catch (err) {
      client.close();
      throw err;
    }
    return c;
  }

  /** The next unread event matching `match`. */
  async next(match: (e: ClientEvent) => boolean = () => true, timeoutMs = 5000): Promise<ClientEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.events.length) {
        const e = this.events[this.cursor++]!;
        if (match(e)) return e;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => [e.type, e.cid, e.requestId]))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
