/**
 * The worker's end of the pipe to the `serve --workers` primary (node:cluster IPC, "advanced"
 * serialization, so Buffers cross as Buffers). Messages carry a `pw` tag so they never mix
 * with node:cluster's own. Requests are answered by id; everything else is a notification.
 */

/** Worker → primary or primary → worker, as sent over the IPC channel. */
export interface IpcMessage {
  pw: string;
  [field: string]: unknown;
}

/** The part of a process (or a cluster Worker) the link needs: send with a write callback. */
export interface IpcPort {
  send(message: IpcMessage, callback?: (err: Error | null) => void): boolean;
  readonly connected: boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

export class IpcClosedError extends Error {
  override name = 'IpcClosedError';
}

const isIpc = (m: unknown): m is IpcMessage => typeof m === 'object' && m !== null && typeof (m as IpcMessage).pw === 'string';

export class IpcLink {
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly listeners = new Map<string, (m: IpcMessage) => void>();
  private ids = 0;

  constructor(private readonly port: IpcPort) {
    port.on('message', (m) => {
      if (!isIpc(m)) return;
      if (m.pw === 'res') return this.settle(m);
      this.listeners.get(m.pw)?.(m);
    });
  }

  get connected(): boolean {
    return this.port.connected;
  }

  /** Receives notifications tagged `pw` (one listener per tag). */
  on(pw: string, listener: (m: IpcMessage) => void): void {
    this.listeners.set(pw, listener);
  }

  /** Fire and forget; resolves once written to the pipe, rejects with IpcClosedError when it was not. */
  send(message: IpcMessage): Promise<void> {
    if (!this.port.connected) return Promise.reject(new IpcClosedError('the workers primary is gone'));
    return new Promise((resolve, reject) => {
      this.port.send(message, (err) => (err ? reject(new IpcClosedError(err.message)) : resolve()));
    });
  }

  /** Calls `op` in the primary; resolves with its value or rejects with its error message. */
  request(op: string, args: unknown[]): Promise<unknown> {
    if (!this.port.connected) return Promise.reject(new IpcClosedError('the workers primary is gone'));
    const id = ++this.ids;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.port.send({ pw: 'req', id, op, args }, (err) => {
        if (err === null) return;
        this.pending.delete(id);
        reject(new IpcClosedError(err.message));
      });
    });
  }

  private settle(m: IpcMessage): void {
    const id = m.id as number;
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (m.error === undefined) p.resolve(m.value);
    else p.reject(new Error(String(m.error)));
  }
}
