import type { IncomingHttpHeaders } from 'node:http2';

/**
 * A call's `grpc-timeout` header read exactly as grpc-js 1.14's server reads it
 * (server-interceptors.ts, handleTimeoutHeader), for the node:http2 fast path. The spec's form is
 * 1-8 digits and a unit (H M S m u n); grpc-js searches the value for that form anywhere, unanchored,
 * so `x5S` is 5 s and `123456789S` is 23456789 s, and answers INTERNAL only when it is nowhere.
 */

const DEADLINE = /(\d{1,8})\s*([HMSmun])/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
// grpc-js's Metadata drops a non-binary header with characters outside printable ASCII: no deadline then.
const LEGAL_VALUE = /^[ -~]*$/;

/**
 * The header's value as grpc-js's `metadata.get('grpc-timeout')[0]`, or undefined when the call has
 * none (absent, or a value grpc-js's Metadata refuses). node:http2 joins repeated headers with ", ".
 */
export function timeoutHeader(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['grpc-timeout'];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return LEGAL_VALUE.test(value) ? value : undefined;
  // An array (not what node:http2 gives for this header): Metadata adds values up to the first illegal one.
  const first = value[0];
  return first !== undefined && LEGAL_VALUE.test(first) ? first : undefined;
}

/**
 * The timer delay grpc-js sets for `value`, in ms: digits × unit, truncated to a 32-bit integer by
 * `| 0` as grpc-js does (so huge values wrap; setTimeout then reads a value below 1 as 1 ms).
 * Undefined when malformed: grpc-js then ends the call INTERNAL with invalidTimeoutMessage(value).
 */
export function timeoutMs(value: string): number | undefined {
  const match = DEADLINE.exec(value);
  if (match === null) return undefined;
  return (Number(match[1]) * UNIT_MS[match[2]!]!) | 0;
}

/** grpc-js's status message for a malformed grpc-timeout (before percent-encoding). */
export function invalidTimeoutMessage(value: string): string {
  return `Invalid grpc-timeout value "${value}"`;
}

/** grpc-js's status message when the deadline passes before the call ends. */
export const DEADLINE_EXCEEDED_MESSAGE = 'Deadline exceeded';
