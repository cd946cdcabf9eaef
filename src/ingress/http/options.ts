import type { PushNode } from '../../core/node.js';
import type { ProjectRegistry } from '../../core/projects/registry.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';

/** What every HTTP route module is given: the core parts it calls and the limits it enforces. */
export interface HttpAppOptions {
  publisher: Publisher;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  maxPushBytes: number;
  /** Whether the node should take traffic (bus up, not draining). */
  isReady: () => boolean;
  /** Presence, hub and cids for the presence, subscribe and cluster routes. */
  node: PushNode;
  /** Unsent bytes a streaming response may have before it is ended as too slow. */
  maxQueueBytes: number;
  /** Serve the SDK demo page at /demo (`--demo true`); the page connects to this WebSocket port. */
  demo?: { wsPort: () => number };
  /** Origins answered with CORS headers (--cors-origins); undefined: no CORS. */
  corsOrigins?: readonly string[];
  /** Key of the admin page (/admin); undefined: the page is off (404). */
  adminKey?: string;
  /** `serve --workers`: the machine's metrics, every worker's (else this node's registry). */
  metricsText?: () => Promise<string>;
}
