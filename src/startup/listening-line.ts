import type { Config } from '../config.js';

/**
 * The start-up line for people: "pushwire: node a1b2 listening on ws://127.0.0.1:8812/ws,
 * http://127.0.0.1:8912, grpc 127.0.0.1:9912" (the JSON log line is for pipelines).
 */
export function listeningLine(config: Config, nodeId: string, ports: { ws: number; http: number; grpc: number }): string {
  // A wildcard bind is reachable on loopback too, which is what a local reader wants to paste.
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const host = wildcard ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const where = wildcard ? ` (all interfaces, ${config.host})` : '';
  return `pushwire: node ${nodeId} listening on ws://${host}:${ports.ws}/ws, http://${host}:${ports.http}, grpc ${host}:${ports.grpc}${where}`;
}
