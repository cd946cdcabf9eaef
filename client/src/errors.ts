/** Error codes the SDK itself produces (the server's codes are numbers, see docs/protocol.md). */
export const ErrorCode = {
  /** No reply within the operation's timeout. */
  Timeout: 'timeout',
  /** The client or subscription was closed, or the connection dropped, before the reply came. */
  Closed: 'closed',
  /** The server answered with an error; `serverCode` holds its code. */
  Server: 'server',
  /** A frame from the server could not be decoded. */
  BadFrame: 'bad_frame',
  /** `getToken()` failed or returned something other than a string. */
  Token: 'token',
  /** An invalid argument passed to the SDK. */
  Argument: 'argument',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Every error the SDK rejects a promise with or emits in an `error` event. */
export class PushwireError extends Error {
  override readonly name = 'PushwireError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The server's error code, for `code === 'server'`. */
    readonly serverCode?: number,
    /** The server says the same command may succeed later (overload, cluster down). */
    readonly temporary = false,
  ) {
    super(message);
  }
}
