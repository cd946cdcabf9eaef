import { BusRefusedError, BusUnconfirmedError } from './bus.js';

export interface PublishWindowOptions {
  /** Most commands sent and not yet answered by the server; over it a publish is refused at once. */
  maxInFlight: number;
  /** A command unanswered for this long is answered BusUnconfirmedError (it stays counted until the server answers). */
  timeoutMs: number;
  /**
   * Whether a rejection of a sent command means the server refused it (nothing happened, e.g. an
   * error reply). Any other rejection (connection lost, ...) leaves the outcome unknown.
   */
  refusedByServer: (err: unknown) => boolean;
}

/** One sent command: answered at most once, by the server or by its deadline. */
class Pending<T> {
  answered = false;
  constructor(
    readonly deadline: number,
    readonly resolve: (value: T) => void,
    readonly reject: (err: Error) => void,
  ) {}
}

/**
 * Turns a connection's publishes into truthful outcomes, bounded in number and time:
 * - refused (BusRefusedError, nothing sent) when the bound of in-flight commands is reached or
 *   an earlier command is already overdue (the server is not answering: sending more only
 *   queues memory);
 * - confirmed when the server answers, or refused when it answers with an error;
 * - unconfirmed (BusUnconfirmedError) at the deadline, or when the connection fails first.
 * An overdue command still counts against the bound until the server answers or the
 * connection drops, so memory stays bounded whatever the server does. One timer per window
 * (commands share the timeout, so the oldest unanswered one is always the next due), not one
 * per command.
 */
export class PublishWindow {
  private inFlight = 0;
  /** Answered unconfirmed, still waiting for the server. */
  private overdue = 0;
  private queue: Pending<never>[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: PublishWindowOptions) {}

  /** Commands sent and not answered by the server yet (overdue ones included). */
  get size(): number {
    return this.inFlight;
  }

  /** Why a publish would be refused now, or undefined. */
  refusal(): string | undefined {
    if (this.overdue > 0) return `redis has not answered for ${this.o.timeoutMs} ms`;
    if (this.inFlight >= this.o.maxInFlight) return `${this.o.maxInFlight} publishes are already waiting for redis`;
    return undefined;
  }

  /** Sends through `send` unless refused; `send` must put the command on the wire (or throw, nothing sent). */
  run<T>(send: () => Promise<T>): Promise<T> {
    const why = this.refusal();
    if (why !== undefined) return Promise.reject(new BusRefusedError(why));
    let sent: Promise<T>;
    try {
      sent = send();
    } catch (err) {
      return Promise.reject(err instanceof BusRefusedError ? err : new BusRefusedError((err as Error).message));
    }
    this.inFlight++;
    return new Promise<T>((resolve, reject) => {
      const p = new Pending<T>(Date.now() + this.o.timeoutMs, resolve, reject);
      this.queue.push(p as unknown as Pending<never>);
      if (this.timer === undefined) this.arm();
      sent.then(
        (value) => this.settle(p, undefined, value),
        (err: unknown) => this.settle(p, err, undefined),
      );
    });
  }

  /** Answers everything still waiting as unconfirmed (the owner is closing). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = this.head; i < this.queue.length; i++) this.expire(this.queue[i]!);
    this.queue = [];
    this.head = 0;
  }

  private settle<T>(p: Pending<T>, err: unknown, value: T | undefined): void {
    this.inFlight--;
    if (p.answered) {
      this.overdue--;
      return;
    }
    p.answered = true;
    if (err === undefined) p.resolve(value as T);
    else if (this.o.refusedByServer(err)) p.reject(new BusRefusedError(`redis refused the command: ${(err as Error).message}`));
    else p.reject(new BusUnconfirmedError(`the redis connection failed before it confirmed the publish (${(err as Error).message})`));
    this.dropAnswered();
  }

  private expire(p: Pending<never>): void {
    if (p.answered) return;
    p.answered = true;
    this.overdue++;
    p.reject(new BusUnconfirmedError(`redis did not confirm the publish within ${this.o.timeoutMs} ms`));
  }

  private dropAnswered(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.answered) this.head++;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private arm(): void {
    this.dropAnswered();
    const next = this.queue[this.head];
    if (next === undefined) return;
    this.timer = setTimeout(() => this.sweep(), Math.max(1, next.deadline - Date.now()));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.head < this.queue.length && this.queue[this.head]!.deadline <= now) this.expire(this.queue[this.head++]!);
    this.arm();
  }
}
