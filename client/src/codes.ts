/**
 * Codes in `connecting`, `disconnected`, `subscribing` and `unsubscribed` events. Below 1000 they are
 * the SDK's own; from 1000 up they are the server's, passed through: WebSocket close codes
 * (1012 service restart, 3001 ping timeout, 3008 slow consumer, ...) and error codes (30003 auth
 * failed, ...), all in the server's catalogue in docs/protocol.md.
 */
export const ReasonCode = {
  /** `connect()` / `subscribe()` was called (connecting, subscribing), `disconnect()` / `unsubscribe()` (disconnected, unsubscribed). */
  Called: 0,
  /** The WebSocket closed without the server saying why (network, crash). */
  TransportClosed: 1,
  /** No frame from the server within ping + pong + maxServerPingDelay: the connection is presumed dead. */
  NoPing: 2,
  /** The browser reported it went offline; reconnecting resumes when it is back online. */
  Offline: 3,
  /** The server did not answer the connect (or subscribe) command within `timeout`. */
  Timeout: 4,
  /** A frame from the server could not be decoded. */
  BadFrame: 5,
  /** The server offered no usable subprotocol (an old node speaking only the legacy protocol). */
  BadProtocol: 6,
  /** The SDK saw an offset jump or an epoch change in live publications: it resubscribes to recover what is missing. */
  Gap: 7,
} as const;

/** Server error codes the SDK acts on (docs/protocol.md). */
export const ServerCode = {
  BadRequest: 30001,
  NotLoggedIn: 30002,
  AuthFailed: 30003,
  TooManyRequests: 30004,
  NoBackend: 30005,
  ClusterUnavailable: 30006,
  /** History or presence asked of a channel whose namespace does not keep it. */
  NotAvailable: 30009,
  InsufficientState: 30010,
} as const;

/** Errors after which the same command may succeed later, so subscriptions retry with back-off. */
export function isTemporary(code: number): boolean {
  return code === ServerCode.TooManyRequests || code === ServerCode.ClusterUnavailable;
}

/**
 * Whether a close code allows reconnecting when the server sent no disconnect advice. Follows the
 * server's catalogue: 3500-3999 and 4500-4999 mean "do not reconnect"; protocol errors (1002, 1003,
 * 1007) would only fail again; everything else (1006 abnormal, 1012 restart, 3000-3499, ...) reconnects.
 */
export function closeAllowsReconnect(code: number): boolean {
  if ((code >= 3500 && code <= 3999) || (code >= 4500 && code <= 4999)) return false;
  return code !== 1002 && code !== 1003 && code !== 1007;
}
