/**
 * The part of the WHATWG WebSocket the SDK uses. Browsers, Node >= 22 (global WebSocket), Node 20's
 * `--experimental-websocket`, and the `ws` package all provide it, so any of them can be passed as
 * `options.websocket`. Declared here instead of using the DOM lib, so the SDK type-checks without it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** WebSocket.OPEN in every implementation. */
export const OPEN = 1;

/** The global WebSocket, when the host has one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}
