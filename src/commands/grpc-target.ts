import { Metadata, credentials, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { OperationError } from './command.js';
import type { FlagSpec, Parsed } from './args.js';

export const DEFAULT_GRPC = '127.0.0.1:9912';

export const GRPC_FLAGS: readonly FlagSpec[] = [
  { name: 'grpc', value: 'HOST:PORT', help: "the node's gRPC address", default: DEFAULT_GRPC },
  { name: 'key', value: 'KEY', help: 'API key (sent as "authorization: Bearer KEY"); needed when the node has API keys' },
];

/** How long a unary call may take, so an unreachable node fails instead of hanging. */
export const CALL_DEADLINE_MS = 10_000;

export interface GrpcTarget {
  address: string;
  credentials: ChannelCredentials;
  metadata: Metadata;
}

export function grpcTarget(parsed: Parsed): GrpcTarget {
  const address = parsed.get('grpc') as string;
  const metadata = new Metadata();
  const key = parsed.get('key');
  if (typeof key === 'string' && key !== '') metadata.set('authorization', `Bearer ${key}`);
  return { address, credentials: credentials.createInsecure(), metadata };
}

export const deadline = (): Date => new Date(Date.now() + CALL_DEADLINE_MS);

/** "UNAVAILABLE: ..." from a grpc-js error, as an OperationError naming the address. */
export function callFailed(address: string, err: unknown): OperationError {
  const e = err as Partial<ServiceError>;
  if (typeof e.code === 'number') {
    const name = status[e.code] ?? String(e.code);
    const details = String(e.details || e.message);
    // grpc-js's connection failures are long and end in an empty "Resolution note".
    const refused = e.code === status.UNAVAILABLE && /ECONNREFUSED/.test(details);
    const text = refused ? 'connection refused (is a node listening there? see --grpc)' : details.replace(/\.?\s*Resolution note:\s*$/, '');
    return new OperationError(`${address}: ${name}: ${text}`);
  }
  return new OperationError(`${address}: ${(err as Error).message}`);
}

/** A unary call as a promise: resolves with the response, rejects with callFailed(). */
export function unary<Res>(address: string, call: (done: (err: ServiceError | null, res: Res) => void) => void): Promise<Res> {
  return new Promise((resolve, reject) => call((err, res) => (err ? reject(callFailed(address, err)) : resolve(res))));
}
