import { Code } from '../../core/errors.js';

/** grpc-gateway's mapping from gRPC status code to HTTP status. */
const HTTP_STATUS: Record<Code, number> = {
  [Code.OK]: 200,
  [Code.CANCELLED]: 499,
  [Code.UNKNOWN]: 500,
  [Code.INVALID_ARGUMENT]: 400,
  [Code.DEADLINE_EXCEEDED]: 504,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.PERMISSION_DENIED]: 403,
  [Code.RESOURCE_EXHAUSTED]: 429,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.ABORTED]: 409,
  [Code.OUT_OF_RANGE]: 400,
  [Code.UNIMPLEMENTED]: 501,
  [Code.INTERNAL]: 500,
  [Code.UNAVAILABLE]: 503,
  [Code.DATA_LOSS]: 500,
  [Code.UNAUTHENTICATED]: 401,
};

export const httpStatusOf = (code: Code): number => HTTP_STATUS[code] ?? 500;

/** google.rpc.Status as grpc-gateway writes it. */
export interface StatusBody {
  code: Code;
  message: string;
  details: unknown[];
}

export const statusBody = (code: Code, message: string): StatusBody => ({ code, message, details: [] });
