import type { RequestListener } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Code } from '../../core/errors.js';
import type { PushNode } from '../../core/node.js';
import type { ApiMethod, ProjectRegistry } from '../../core/projects/registry.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { withFastPush } from './fast-push.js';
import { historyRoutes } from './history-routes.js';
import { presenceRoutes } from './presence-routes.js';
import { PUSH_DATA_PATH, bearerKey, bodyLimit, failureStatus, parseJsonBody, pushData, pushDataBatch } from './push-api.js';
import { httpStatusOf, statusBody } from './status.js';

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
}

/**
 * Checks `Authorization: Bearer <key>` for `method` before the body is read, leaving the key's
 * project (undefined on an open API) in res.locals.keyPid.
 */
export const authorize =
  (projects: ProjectRegistry, method: ApiMethod) =>
  (req: Request, res: Response, next: NextFunction): void => {
    res.locals.keyPid = projects.authorize(bearerKey(req.get('authorization')), method);
    next();
  };

/**
 * The REST bridge, grpc-gateway style: proto3 JSON bodies, google.rpc.Status errors with
 * grpc-gateway's HTTP mapping, and the same Publisher the gRPC service calls. Also health
 * and metrics.
 */
export function createHttpApp(o: HttpAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // grpc-gateway matches paths exactly: /v1/pushdata and /v1/pushData/ are 404s.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

  app.use((req, res, next) => {
    const end = o.metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const path = (req.route as { path?: string | RegExp } | undefined)?.path;
      // RegExp routes here match one exact path, so the request path is a bounded label.
      const route = path instanceof RegExp ? req.path : (path ?? 'unmatched');
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });

  const limit = bodyLimit(o.maxPushBytes);
  const body = express.raw({ type: () => true, limit });
  // Normally answered by the fast path in front of express (fast-push.ts); these routes serve what it
  // hands on (compressed bodies) and the same answers when express runs alone.
  const raw = (req: Request): Buffer | undefined => (Buffer.isBuffer(req.body) ? req.body : undefined);
  app.post(PUSH_DATA_PATH, authorize(o.projects, 'PushData'), body, async (req: Request, res: Response) => {
    res.json(await pushData(o.publisher, raw(req), res.locals.keyPid as string | undefined));
  });
  // grpc-gateway's custom verb syntax; a RegExp because ":" starts a parameter in Express paths.
  app.post(/^\/v1\/pushData:batch$/, authorize(o.projects, 'PushDataBatch'), body, async (req: Request, res: Response) => {
    res.json(await pushDataBatch(o.publisher, raw(req), res.locals.keyPid as string | undefined));
  });
  app.all(/^\/v1\/pushData:batch$/, (_req, res) => {
    send(res, Code.UNIMPLEMENTED, 'Method Not Allowed');
  });
  app.all('/v1/pushData', (_req, res) => {
    send(res, Code.UNIMPLEMENTED, 'Method Not Allowed');
  });

  presenceRoutes(app, o);
  historyRoutes(app, o);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = o.isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(o.metrics.registry.contentType).send(await o.metrics.registry.metrics());
  });

  app.use((_req, res) => {
    send(res, Code.NOT_FOUND, 'Not Found');
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { code, message } = failureStatus(err, limit, o.logger);
    send(res, code, message);
  });
  return app;
}

/** The HTTP listener: the REST bridge's fast path in front of the express app. */
export function createHttpHandler(o: HttpAppOptions): RequestListener {
  return withFastPush(o, createHttpApp(o));
}

/** The body express.raw() read, parsed as JSON (for routes of other request types). */
export function jsonBody(req: Request): unknown {
  return parseJsonBody(Buffer.isBuffer(req.body) ? req.body : undefined);
}

export function send(res: Response, code: Code, message: string): void {
  if (res.headersSent) return;
  res.status(httpStatusOf(code)).json(statusBody(code, message));
}
