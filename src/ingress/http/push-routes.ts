import express, { type Express, type Request, type Response } from 'express';
import { Code } from '../../core/errors.js';
import type { HttpAppOptions } from './options.js';
import { PUSH_DATA_PATH, pushData, pushDataBatch } from './push-api.js';
import { authorize, send } from './route-helpers.js';

/**
 * POST /v1/pushData and /v1/pushData:batch through express. Normally answered by the fast path in
 * front of express (fast-push.ts); these routes serve what it hands on (compressed bodies) and the
 * same answers when express runs alone.
 */
export function pushRoutes(app: Express, o: HttpAppOptions, limit: number): void {
  const body = express.raw({ type: () => true, limit });
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
}
