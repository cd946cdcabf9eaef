import { status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { PushwireError } from '../../core/errors.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Data, Empty, ProxyServer } from '../../../gen/order/proxy.js';
import type { PushServiceServer } from '../../../gen/pushwire/v1/push.js';

interface Deps {
  publisher: Publisher;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Wraps a use case as a grpc-js unary handler: the generated code decodes, `work` runs the
 * core, PushwireError codes pass through as gRPC status codes, and the call is timed.
 */
function unary<Req, Res>(method: string, o: Deps, work: (req: Req) => Promise<Res>) {
  const ok = o.metrics.grpcDuration.labels({ method, code: 'OK' });
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const started = performance.now();
    work(call.request).then(
      (res) => {
        ok.observe((performance.now() - started) / 1000);
        callback(null, res);
      },
      (err: unknown) => {
        const known = err instanceof PushwireError;
        const code = known ? err.code : status.INTERNAL;
        if (!known) o.logger.error({ err, method }, 'gRPC call failed');
        o.metrics.grpcDuration.observe({ method, code: status[code] }, (performance.now() - started) / 1000);
        callback({ code, details: known ? err.message : 'internal error' });
      },
    );
  };
}

/** pushwire.v1.PushService. */
export function pushService(o: Deps): PushServiceServer {
  return {
    pushData: unary('PushData', o, (req) => o.publisher.push(req, 'grpc')),
    pushDataBatch: unary('PushDataBatch', o, (req) => o.publisher.pushBatch(req.pushes, 'grpc')),
  };
}

/** gpush's order.Proxy, for callers that predate pushwire: the same use case, gpush's Empty reply. */
export function legacyProxyService(o: Deps): ProxyServer {
  return {
    pushData: unary<Data, Empty>('order.Proxy/PushData', o, (req) => o.publisher.push(req, 'grpc_gpush').then(() => ({}))),
  };
}
