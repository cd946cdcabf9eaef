import express, { type NextFunction, type Request, type Response } from 'express';
import { Code, PushwireError } from '../../core/errors.js';
import type { Publisher } from '../../core/publisher.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { decodeProtoJson, type FieldSpec } from './proto-json.js';
import { httpStatusOf, statusBody } from './status.js';

export interface HttpAppOptions {
  publisher: Publisher;
  metrics: Metrics;
  logger: Logger;
  maxPushBytes: number;
  /** Whether the node should take traffic (bus up, not draining). */
  isReady: () => boolean;
}

const PUSH_DATA_REQUEST: readonly FieldSpec[] = [
  { name: 'uid', kind: 'string' },
  { name: 'topic', kind: 'string' },
  { name: 'data', kind: 'bytes' },
];

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
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });

  // base64 inflates 4/3; the slack covers the JSON around it.
  const limit = Math.ceil((o.maxPushBytes * 4) / 3) + 64 * 1024;
  app.post('/v1/pushData', express.raw({ type: () => true, limit }), async (req: Request, res: Response) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let body: unknown = {};
    // grpc-gateway treats an empty body as the empty message.
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new PushwireError(Code.INVALID_ARGUMENT, 'request body is not valid JSON');
      }
    }
    const fields = decodeProtoJson(body, 'pushwire.v1.PushDataRequest', PUSH_DATA_REQUEST);
    const result = await o.publisher.push(
      {
        uid: (fields.uid as string | undefined) ?? '',
        topic: (fields.topic as string | undefined) ?? '',
        data: (fields.data as Buffer | undefined) ?? Buffer.alloc(0),
      },
      'http',
    );
    res.json({ messageId: result.messageId, nodeId: result.nodeId });
  });
  app.all('/v1/pushData', (_req, res) => {
    send(res, Code.UNIMPLEMENTED, 'Method Not Allowed');
  });

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

function send(res: Response, code: Code, message: string): void {
  if (res.headersSent) return;
  res.status(httpStatusOf(code)).json(statusBody(code, message));
}
