import type { PushNode } from '../core/node.js';
import type { GrpcIngress } from '../ingress/grpc/server.js';
import type { Metrics } from '../observability/metrics.js';

/**
 * Readiness feeds gRPC health and the gauges; polled, since the bus reconnects on its own.
 * Returns the stop function.
 */
export function watchReadiness(node: PushNode, grpc: GrpcIngress, metrics: Metrics, isReady: () => boolean): () => void {
  let lastReady = isReady();
  grpc.setServing(lastReady);
  const timer = setInterval(() => {
    const ready = isReady();
    metrics.busReady.set(node.isBusReady() ? 1 : 0);
    metrics.channels.set(node.hub.channelCount);
    if (ready !== lastReady) grpc.setServing(ready);
    lastReady = ready;
  }, 250);
  timer.unref();
  return () => clearInterval(timer);
}
