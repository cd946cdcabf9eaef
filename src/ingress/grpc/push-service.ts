import { status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { PushwireError } from '../../core/errors.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { PushDataRequest, PushDataResponse, PushServiceServer } from '../../../gen/pushwire/v1/push.js';

/** PushService over gRPC: decode is done by the generated code, everything else by the Publisher. */
export function pushService(publisher: Publisher, metrics: Metrics, logger: Logger): PushServiceServer {
  return {
    pushData(call: ServerUnaryCall<PushDataRequest, PushDataResponse>, callback: sendUnaryData<PushDataResponse>) {
      const end = metrics.grpcDuration.startTimer({ method: 'PushData' });
      const { uid, topic, data } = call.request;
      publisher.push({ uid, topic, data }, 'grpc').then(
        (result) => {
          end({ code: 'OK' });
          callback(null, result);
        },
        (err: unknown) => {
          const code = err instanceof PushwireError ? err.code : status.INTERNAL;
          if (!(err instanceof PushwireError)) logger.error({ err }, 'PushData failed');
          end({ code: status[code] });
          callback({ code, details: err instanceof PushwireError ? err.message : 'internal error' });
        },
      );
    },
  };
}
