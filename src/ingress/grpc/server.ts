import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { BackendRouter } from '../../core/backend/router.js';
import { Code } from '../../core/errors.js';
import type { PushNode } from '../../core/node.js';
import type { ProjectRegistry } from '../../core/projects/registry.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { ProxyService } from '../../../gen/order/proxy.js';
import { BackendServiceService } from '../../../gen/pushwire/v1/backend.js';
import { backendService } from './backend-service.js';
import { ClusterServiceService } from '../../../gen/pushwire/v1/cluster.js';
import { HistoryServiceService } from '../../../gen/pushwire/v1/history.js';
import { OnlineUsersServiceService } from '../../../gen/pushwire/v1/presence.js';
import { historyService } from './history-service.js';
import { PushServiceService } from '../../../gen/pushwire/v1/push.js';
import { SubscribeServiceService } from '../../../gen/pushwire/v1/subscribe.js';
import { clusterService, onlineUsersService } from './presence-service.js';
import { encodePushDataBatchResponse, encodePushDataResponse, legacyProxyService, pushService } from './push-service.js';
import { tolerant } from './tolerant-decode.js';
import { encodePushStreamResponse, pushStreamHandler } from './push-stream.js';
import { installFastPath } from './grpc-fast-path.js';
import { createReflection } from './reflection.js';
import { StreamEnd } from './streams.js';
import { subscribeService } from './subscribe-service.js';

export interface GrpcServerOptions {
  publisher: Publisher;
  backends: BackendRouter;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  maxPushBytes: number;
  /** Hub, presence and cids for the streaming and presence services. */
  node: PushNode;
  /** Unsent bytes a Subscribe stream may have before it is ended as too slow. */
  maxQueueBytes: number;
  /** PushData and PushStream from node:http2 in front of grpc-js (grpc-fast-path.ts); `--grpc-fast-path`. */
  fastPath: boolean;
}

const SERVICES = [
  '',
  'pushwire.v1.PushService',
  'pushwire.v1.BackendService',
  'pushwire.v1.OnlineUsersService',
  'pushwire.v1.SubscribeService',
  'pushwire.v1.ClusterService',
  'pushwire.v1.HistoryService',
];

/**
 * PushService, BackendService, OnlineUsersService, SubscribeService, ClusterService, gpush's order.Proxy,
 * grpc.health.v1.Health and reflection on one grpc-js server.
 */
export class GrpcIngress {
  private readonly server: Server;
  private readonly health = new HealthImplementation(Object.fromEntries(SERVICES.map((s) => [s, 'SERVING'])));
  /** Open server streams (Subscribe, WatchOnlineUsers, Connect), ended at shutdown. */
  private readonly streams = new Set<AbortController>();
  /** Installs the fast path once the server is bound; undefined when it is off. */
  private readonly installFastPath: (() => void) | undefined;

  constructor(o: GrpcServerOptions) {
    // Room for the largest push plus its framing; beyond that grpc-js answers RESOURCE_EXHAUSTED.
    const maxMessage = o.maxPushBytes + 64 * 1024;
    this.server = new Server({ 'grpc.max_receive_message_length': maxMessage, 'grpc.enable_channelz': 0 });
    // The same service with hand-written response encoders (byte-identical, cheaper per call).
    const definition = {
      ...PushServiceService,
      pushData: { ...PushServiceService.pushData, responseSerialize: encodePushDataResponse },
      pushDataBatch: { ...PushServiceService.pushDataBatch, responseSerialize: encodePushDataBatchResponse },
      pushStream: { ...PushServiceService.pushStream, responseSerialize: encodePushStreamResponse },
    };
    const deps = { ...o, online: o.node.online, streams: this.streams };
    const pushDefinition = tolerant(definition);
    const push = pushService(o, pushStreamHandler(deps, o.node.nodeId));
    this.server.addService(pushDefinition, push);
    // The fast path runs the very handlers and (de)serializers grpc-js was given.
    this.installFastPath = !o.fastPath
      ? undefined
      : () =>
          installFastPath(this.server, {
            pushData: {
              path: pushDefinition.pushData.path,
              deserialize: pushDefinition.pushData.requestDeserialize,
              serialize: pushDefinition.pushData.responseSerialize,
              handler: push.pushData,
            },
            pushStream: {
              path: pushDefinition.pushStream.path,
              deserialize: pushDefinition.pushStream.requestDeserialize,
              serialize: pushDefinition.pushStream.responseSerialize,
              handler: push.pushStream,
            },
            maxMessage,
            metrics: o.metrics,
          });
    this.server.addService(tolerant(ProxyService), legacyProxyService(o));
    this.server.addService(tolerant(BackendServiceService), backendService(deps));
    this.server.addService(tolerant(OnlineUsersServiceService), onlineUsersService(deps));
    this.server.addService(tolerant(ClusterServiceService), clusterService(deps));
    this.server.addService(tolerant(SubscribeServiceService), subscribeService(deps));
    this.server.addService(tolerant(HistoryServiceService), historyService({ ...o, history: o.node.history }));
    this.health.addToServer(this.server);
    createReflection().addToServer(this.server);
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (err, bound) => {
        if (err) return reject(err);
        try {
          this.installFastPath?.();
        } catch (e) {
          return reject(e instanceof Error ? e : new Error(String(e)));
        }
        resolve(bound);
      });
    });
  }

  setServing(serving: boolean): void {
    for (const s of SERVICES) this.health.setStatus(s, serving ? 'SERVING' : 'NOT_SERVING');
  }

  /** Lets in-flight calls finish, up to `timeoutMs`, then cuts the rest. */
  shutdown(timeoutMs: number): Promise<void> {
    // Streams never finish by themselves: end them so their clients reconnect elsewhere.
    for (const s of this.streams) s.abort(new StreamEnd(Code.UNAVAILABLE, 'node shutting down'));
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
