import express, { type NextFunction, type Request, type Response } from 'express';
import { Code, PushwireError } from '../../core/errors.js';
import type { PushNode } from '../../core/node.js';
import type { ApiMethod, ProjectRegistry } from '../../core/projects/registry.js';
import type { Publisher, PushRequest } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { presenceRoutes } from './presence-routes.js';
import { decodeProtoJson, type FieldSpec } from './proto-json.js';
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

const PUSH_DATA_REQUEST: readonly FieldSpec[] = [
  { name: 'uid', kind: 'string' },
  { name: 'topic', kind: 'string' },
  { name: 'data', kind: 'bytes' },
  { name: 'pid', kind: 'string' },
  { name: 'idempotency_key', kind: 'string' },
  { name: 'uids', kind: 'strings' },
  { name: 'cids', kind: 'strings' },
  { name: 'tags', kind: 'strings' },
  { name: 'reply_to', kind: 'string' },
];

const PUSH_DATA_BATCH_REQUEST: readonly FieldSpec[] = [
  { name: 'pushes', kind: 'messages', of: { typeName: 'pushwire.v1.PushDataRequest', fields: PUSH_DATA_REQUEST } },
];

/** The parsed JSON body; grpc-gateway treats an empty body as the empty message. */
export function jsonBody(req: Request): unknown {
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new PushwireError(Code.INVALID_ARGUMENT, 'request body is not valid JSON');
  }
}

const pushRequest = (fields: Record<string, unknown>): PushRequest => ({
  uid: (fields.uid as string | undefined) ?? '',
  topic: (fields.topic as string | undefined) ?? '',
  data: (fields.data as Buffer | undefined) ?? Buffer.alloc(0),
  pid: (fields.pid as string | undefined) ?? '',
  idempotencyKey: (fields.idempotency_key as string | undefined) ?? '',
  uids: (fields.uids as string[] | undefined) ?? [],
  cids: (fields.cids as string[] | undefined) ?? [],
  tags: (fields.tags as string[] | undefined) ?? [],
  replyTo: (fields.reply_to as string | undefined) ?? '',
});

/**
 * Checks `Authorization: Bearer <key>` for `method` before the body is read, leaving the key's
 * project (undefined on an open API) in res.locals.keyPid.
 */
export const authorize =
  (projects: ProjectRegistry, method: ApiMethod) =>
  (req: Request, res: Response, next: NextFunction): void => {
    const header = req.get('authorization');
    const key = header === undefined ? undefined : (/^Bearer\s+(\S+)$/i.exec(header.trim())?.[1] ?? header);
    res.locals.keyPid = projects.authorize(key, method);
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

  // base64 inflates 4/3; the slack covers the JSON around it.
  const limit = Math.ceil((o.maxPushBytes * 4) / 3) + 64 * 1024;
  const body = express.raw({ type: () => true, limit });
  app.post('/v1/pushData', authorize(o.projects, 'PushData'), body, async (req: Request, res: Response) => {
    const fields = decodeProtoJson(jsonBody(req), 'pushwire.v1.PushDataRequest', PUSH_DATA_REQUEST);
    const result = await o.publisher.push(pushRequest(fields), 'http', res.locals.keyPid as string | undefined);
    // proto3 JSON leaves out default values: `duplicate` appears only when true.
    res.json({ messageId: result.messageId, nodeId: result.nodeId, ...(result.duplicate ? { duplicate: true } : {}) });
  });
  // grpc-gateway's custom verb syntax; a RegExp because ":" starts a parameter in Express paths.
  app.post(/^\/v1\/pushData:batch$/, authorize(o.projects, 'PushDataBatch'), body, async (req: Request, res: Response) => {
    const fields = decodeProtoJson(jsonBody(req), 'pushwire.v1.PushDataBatchRequest', PUSH_DATA_BATCH_REQUEST);
    const pushes = ((fields.pushes as Record<string, unknown>[] | undefined) ?? []).map(pushRequest);
    const result = await o.publisher.pushBatch(pushes, 'http', res.locals.keyPid as string | undefined);
    res.json({ messageIds: result.messageIds, nodeId: result.nodeId });
  });
  app.all(/^\/v1\/pushData:batch$/, (_req, res) => {
    send(res, Code.UNIMPLEMENTED, 'Method Not Allowed');
  });
  app.all('/v1/pushData', (_req, res) => {
    send(res, Code.UNIMPLEMENTED, 'Method Not Allowed');
  });

  presenceRoutes(app, o);

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
    if (err instanceof PushwireError) return send(res, err.code, err.message);
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') return send(res, Code.INVALID_ARGUMENT, `request body exceeds ${limit} bytes`);
    if (type !== undefined && type.startsWith('encoding.')) return send(res, Code.INVALID_ARGUMENT, 'unsupported request body encoding');
    if (type === 'request.aborted') return send(res, Code.CANCELLED, 'request aborted');
    o.logger.error({ err }, 'http request failed');
    send(res, Code.INTERNAL, 'internal error');
  });
  return app;
}

export function send(res: Response, code: Code, message: string): void {
  if (res.headersSent) return;
  res.status(httpStatusOf(code)).json(statusBody(code, message));
}
