/**
 * Errors are modelled on gRPC status codes so every ingress maps them once at its edge:
 * gRPC sends the code as is, the REST bridge maps it to an HTTP status (grpc-gateway's table).
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type Code = (typeof Code)[keyof typeof Code];

/** Lower-case code names, e.g. for metric labels: 14 -> "unavailable". */
export const CODE_NAMES = Object.fromEntries(
  Object.entries(Code).map(([name, code]) => [code, name.toLowerCase()]),
) as Record<Code, string>;

export class PushwireError extends Error {
  override name = 'PushwireError';

  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

export const invalidArgument = (message: string): PushwireError =>
  new PushwireError(Code.INVALID_ARGUMENT, message);
