import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoRoot } from './proto-files.js';

/**
 * Server reflection over our own .proto files and the standard health service, so stock
 * tools (grpcurl, grpc_cli, Postman) can list and call PushService without local protos.
 */
export function createReflection(): ReflectionService {
  const root = protoRoot();
  const require = createRequire(import.meta.url);
  const healthProto = require('grpc-health-check').protoPath as string;
  const definition = protoLoader.loadSync([
      'pushwire/v1/push.proto',
      'pushwire/v1/backend.proto',
      'pushwire/v1/presence.proto',
      'pushwire/v1/subscribe.proto',
      'pushwire/v1/cluster.proto',
      'pushwire/v1/history.proto',
      'pushwire/v1/client.proto',
      'order/proxy.proto',
      'health/v1/health.proto',
    ], {
    // Field names exactly as in the .proto (proto-loader would camel-case them otherwise).
    keepCase: true,
    includeDirs: [join(root, 'proto'), join(root, 'third_party'), dirname(dirname(dirname(healthProto)))],
  });
  return new ReflectionService(definition);
}
