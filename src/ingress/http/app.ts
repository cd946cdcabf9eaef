import type { RequestListener } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Code } from '../../core/errors.js';
import { adminRoutes } from './admin-routes.js';
import { withCors } from './cors.js';
import { demoRoutes } from './demo-routes.js';
import { withFastPush } from './fast-push.js';
import { docsRoutes } from './docs-routes.js';
import { healthRoutes } from './health-routes.js';
import { historyRoutes } from './history-routes.js';
import { openapiRoutes } from './openapi-routes.js';
import type { HttpAppOptions } from './options.js';
import { presenceRoutes } from './presence-routes.js';
import { bodyLimit, failureStatus } from './push-api.js';
import { pushRoutes } from './push-routes.js';
import { send } from './route-helpers.js';

export type { HttpAppOptions } from './options.js';

/**
 * The REST bridge, grpc-gateway style: proto3 JSON bodies, google.rpc.Status errors with
 * grpc-gateway's HTTP mapping, and the same Publisher the gRPC service calls. Also health
 * and metrics, and the admin page when --admin-key is set. This file only assembles: each route family is its own module.
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
  pushRoutes(app, o, limit);
  presenceRoutes(app, o);
  historyRoutes(app, o);
  healthRoutes(app, o);
  openapiRoutes(app);
  docsRoutes(app);
  if (o.adminKey !== undefined) adminRoutes(app, o, o.adminKey);
  demoRoutes(app, o);

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
  return withCors(o.corsOrigins, withFastPush(o, createHttpApp(o)));
}
