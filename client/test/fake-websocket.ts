import type { WebSocketLike } from '../src/transport.js';

/**
 * A scripted stand-in for the browser WebSocket, for unit tests of the SDK's state machines only:
 * the test plays the server (open, frames, close) and reads what the client sent.
 */
export class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = [];
  /** The subprotocol the fake "server" accepts; '' models a node without protocol v1. */
  static accept = 'pushwire.v1.json';

  readyState = 0;
  protocol = '';
  binaryType = 'blob';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly sent: Array<string | Uint8Array> = [];
  closedWith: number | undefined;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.instances.push(this);
  }

  static reset(): void {
    FakeWebSocket.instances = [];
    FakeWebSocket.accept = 'pushwire.v1.json';
  }

  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.instances.at(-1);
    if (!ws) throw new Error('no WebSocket was opened');
    return ws;
  }

  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }

  /** Set when the client closed a still-connecting socket without an error handler (the `ws` package would crash the process). */
  unhandledError = false;

  close(code?: number): void {
    if (this.readyState === 0) {
      // Like `ws`: closing before the handshake finished emits 'error'.
      if (this.onerror) this.onerror({});
      else this.unhandledError = true;
    }
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }

  // --- the test's side ---

  open(): void {
    this.readyState = 1;
    this.protocol = FakeWebSocket.accept;
    this.onopen?.({});
  }

  /** Every command the client sent, one parsed JSON object per command. */
  commands(): Array<Record<string, any>> {
    return this.sent.flatMap((f) => (f as string).split('\n').map((l) => JSON.parse(l) as Record<string, any>));
  }

  lastCommand(): Record<string, any> {
    const c = this.commands().at(-1);
    if (!c) throw new Error('the client sent nothing');
    return c;
  }

  /** Sends server messages, all in one frame. */
  push(...messages: unknown[]): void {
    this.onmessage?.({ data: messages.map((m) => JSON.stringify(m)).join('\n') });
  }

  /** Answers the client's connect command. */
  acceptConnect(result: Record<string, unknown> = {}): void {
    const connect = this.commands().find((c) => c.connect);
    if (!connect) throw new Error('no connect command');
    this.push({ id: connect.id, connect: { client: 'n1-b-1', node: 'n1', ping: 25, pong: 8, ...result } });
  }

  /** open() + acceptConnect(). */
  handshake(result: Record<string, unknown> = {}): void {
    this.open();
    this.acceptConnect(result);
  }

  serverClose(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}
