import type { ServiceDefinition } from '@grpc/grpc-js';
import { Code, PushwireError } from '../../core/errors.js';

/**
 * A request whose bytes did not decode. grpc-js answers a throwing deserializer with INTERNAL
 * ("Error deserializing request"), which says "server bug" for what is the caller's bad input;
 * so the node's deserializers never throw and hand this to the handler instead, which answers
 * INVALID_ARGUMENT (unary() and serverStream() check it first).
 */
export class Undecodable {
  constructor(readonly reason: string) {}
}

/** The INVALID_ARGUMENT a handler answers for an Undecodable request, or undefined for a real one. */
export function decodeFailure(request: unknown): PushwireError | undefined {
  return request instanceof Undecodable ? new PushwireError(Code.INVALID_ARGUMENT, `request could not be decoded: ${request.reason}`) : undefined;
}

/**
 * `definition` with every request deserializer made tolerant (see Undecodable). For a client
 * stream (PushStream) each message is decoded on its own: an Undecodable one is answered in
 * its slot by the handler, and the stream goes on.
 */
export function tolerant<D extends ServiceDefinition>(definition: D): D {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes);
        } catch (err) {
          return new Undecodable(err instanceof Error ? err.message : 'malformed protobuf');
        }
      },
    };
  }
  return out as D;
}
