import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { ProjectRegistry } from '../../core/projects/registry.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { ProxyService } from '../../../gen/order/proxy.js';
import { PushServiceService } from '../../../gen/pushwire/v1/push.js';
import { encodePushDataResponse, legacyProxyService, pushService } from './push-service.js';
import { createReflection } from './reflection.js';

export interface GrpcServerOptions {
  publisher: Publisher;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  maxPushBytes: number;
}

const SERVICES = ['', 'pushwire.v1.PushService'];

/** PushService, gpush's order.Proxy, grpc.health.v1.Health and reflection on one grpc-js server. */
export class GrpcIngress {
  private readonly server: Server;
  private readonly health = new HealthImplementation(Object.fromEntries(SERVICES.map((s) => [s, 'SERVING'])));

  constructor(o: GrpcServerOptions) {
    this.server = new Server({
      // Room for the largest push plus its framing; beyond that grpc-js answers RESOURCE_EXHAUSTED.
      'grpc.max_receive_message_length': o.maxPushBytes + 64 * 1024,
      'grpc.enable_channelz': 0,
    });
    // The same service with a hand-written response encoder (byte-identical, cheaper per call).
    const definition = { ...PushServiceService, pushData: { ...PushServiceService.pushData, responseSerialize: encodePushDataResponse } };
    this.server.addService(definition, pushService(o));
    this.server.addService(ProxyService, legacyProxyService(o));
    this.health.addToServer(this.server);
    createReflection().addToServer(this.server);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
  }

  setServing(serving: boolean): void {
    for (const s of SERVICES) this.health.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING');
  }

  /** Lets in-flight calls finish, up to `timeoutMs`, then cuts the rest. */
  shutdown(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
