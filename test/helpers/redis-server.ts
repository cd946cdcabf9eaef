import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, sleep } from './ports.js';

/** A private redis-server on an ephemeral port that a test can kill and restart. */
export class TestRedis {
  private proc: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<TestRedis> {
    const r = new TestRedis(await freePort());
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port and waits until it answers PING. */
  async restart(): Promise<void> {
    if (this.proc && this.running(this.proc)) return;
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 5000;
    for (;;) {
      const client = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => {}); // refused while the server starts; the loop retries
      try {
        await client.connect();
        await client.ping();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}`);
        await sleep(50);
      } finally {
        client.disconnect();
      }
    }
  }

  /** SIGKILLs the server (no goodbye to its clients) and waits for it to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running(proc)) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOPs the server: connections stay open, nothing is answered (a stalled Redis). */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  /** SIGCONTs a paused server: it works through what its clients sent meanwhile. */
  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** A SIGKILLed process keeps exitCode null and sets signalCode instead. */
  private running(proc: ChildProcess): boolean {
    return proc.exitCode === null && proc.signalCode === null;
  }

  /** A plain client for assertions (PUBSUB NUMSUB, ...); caller disconnects it. */
  client(): Redis {
    return new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  }

  stop(): Promise<void> {
    this.resume(); // a paused server would still die of SIGKILL, but say so explicitly
    return this.kill();
  }
}
