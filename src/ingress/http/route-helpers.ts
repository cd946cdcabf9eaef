import type { NextFunction, Request, Response } from 'express';
import type { Code } from '../../core/errors.js';
import type { ApiMethod, ProjectRegistry } from '../../core/projects/registry.js';
import { bearerKey, parseJsonBody } from './push-api.js';
import { httpStatusOf, statusBody } from './status.js';

// Helpers shared by the express route modules. They live below the routes (and app.ts, which
// mounts them) so that routes import down, never back into the app that assembles them.

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

/** The body express.raw() read, parsed as JSON (for routes of other request types). */
export function jsonBody(req: Request): unknown {
  return parseJsonBody(Buffer.isBuffer(req.body) ? req.body : undefined);
}

/** A google.rpc.Status answer with grpc-gateway's HTTP status for `code` (nothing once headers are out). */
export function send(res: Response, code: Code, message: string): void {
  if (res.headersSent) return;
  res.status(httpStatusOf(code)).json(statusBody(code, message));
}
