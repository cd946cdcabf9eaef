import { status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { PushwireError } from '../../core/errors.js';
import type { PushRequest, PushResult, Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Data, Empty, ProxyServer } from '../../../gen/order/proxy.js';
import type { PushDataRequest, PushDataResponse, PushServiceServer } from '../../../gen/pushwire/v1/push.js';

/**
 * One unary push handler for every gRPC push method: the generated code decodes, the
 * Publisher validates and publishes, and `reply` shapes the method's response.
 */
function pushHandler<Req extends PushRequest, Res>(
  method: string,
  ingress: string,
  o: { publisher: Publisher; metrics: Metrics; logger: Logger },
  reply: (result: PushResult) => Res,
) {
  const ok = o.metrics.grpcDuration.labels({ method, code: 'OK' });
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const started = performance.now();
    const { uid, topic, data } = call.request;
    o.publisher.push({ uid, topic, data }, ingress).then(
      (result) => {
        ok.observe((performance.now() - started) / 1000);
        callback(null, reply(result));
      },
      (err: unknown) => {
        const known = err instanceof PushwireError;
        const code = known ? err.code : status.INTERNAL;
        if (!known) o.logger.error({ err, method }, 'push failed');
        o.metrics.grpcDuration.observe({ method, code: status[code] }, (performance.now() - started) / 1000);
        callback({ code, details: known ? err.message : 'internal error' });
      },
    );
  };
}

/** pushwire.v1.PushService. */
export function pushService(publisher: Publisher, metrics: Metrics, logger: Logger): PushServiceServer {
  return {
    pushData: pushHandler<PushDataRequest, PushDataResponse>('PushData', 'grpc', { publisher, metrics, logger }, (r) => r),
  };
}

/** gpush's order.Proxy, for callers that predate pushwire: same handler, gpush's Empty reply. */
export function legacyProxyService(publisher: Publisher, metrics: Metrics, logger: Logger): ProxyServer {
  return {
    pushData: pushHandler<Data, Empty>('order.Proxy/PushData', 'grpc_gpush', { publisher, metrics, logger }, () => ({})),
  };
}
