import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { PushNode } from '../core/node.js';
import { protoRoot } from '../ingress/grpc/proto-files.js';

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(protoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** Publishes this node's record (addresses, version, counts) to the cluster's node list. */
export function startHeartbeat(config: Config, node: PushNode, ports: { ws: number; http: number; grpc: number }): void {
  const startedAt = Date.now();
  const version = packageVersion();
  // Wildcard binds say nothing about where to reach the node; the hostname does.
  const host = config.host === '0.0.0.0' || config.host === '::' ? hostname() : config.host;
  const address = (port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  node.startHeartbeat(() => ({
    id: config.nodeId,
    wsAddress: address(ports.ws),
    httpAddress: address(ports.http),
    grpcAddress: address(ports.grpc),
    version,
    startedAt,
    connections: node.hub.connectionCount,
    subscriptions: node.hub.channelCount,
  }));
}
