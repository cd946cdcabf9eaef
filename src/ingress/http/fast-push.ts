import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { ApiMethod } from '../../core/projects/registry.js';
import type { Publisher } from '../../core/publisher.js';
import type { HttpAppOptions } from './options.js';
import { PUSH_DATA_BATCH_PATH, PUSH_DATA_PATH, bearerKey, bodyLimit, failureStatus, pushData, pushDataBatch } from './push-api.js';
import { httpStatusOf, statusBody } from './status.js';

interface Route {
  path: string;
  api: ApiMethod;
  run: (publisher: Publisher, raw: Buffer | undefined, keyPid: string | undefined) => Promise<object>;
}

const ROUTES: readonly Route[] = [
  { path: PUSH_DATA_PATH, api: 'PushData', run: pushData },
  { path: PUSH_DATA_BATCH_PATH, api: 'PushDataBatch', run: pushDataBatch },
];

// Typed like body-parser's errors, so failureStatus() maps them exactly as on the express path.
const tooLarge = { type: 'entity.too.large' };
const aborted = { type: 'request.aborted' };
const sizeMismatch = Object.assign(new Error('request size did not match content length'), { type: 'request.size.invalid' });

/**
 * The REST bridge's hot path without express: POST /v1/pushData and /v1/pushData:batch are served
 * straight from node:http (express's router, body-parser and on-finished cost more than the push
 * itself). Everything else, and any request this path does not handle the same way by construction
 * (a compressed body: body-parser inflates it), goes to `next`, the express app, which keeps the
 * same routes. Callers see the same bytes either way: the same auth before the body is read, body
 * limit, proto3 JSON decoding and handlers (push-api.ts), google.rpc.Status errors, headers and
 * http duration metric.
 */
export function withFastPush(o: HttpAppOptions, next: RequestListener): RequestListener {
  const limit = bodyLimit(o.maxPushBytes);

  const answer = (res: ServerResponse, status: number, value: object): void => {
    if (res.headersSent) return;
    const body = JSON.stringify(value);
    // What express's res.json() writes (x-powered-by and etag are off there).
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', String(Buffer.byteLength(body)));
    res.end(body, 'utf8');
  };
  const fail = (res: ServerResponse, err: unknown): void => {
    const { code, message } = failureStatus(err, limit, o.logger);
    answer(res, httpStatusOf(code), statusBody(code, message));
  };

  // The duration histogram's children for 200s, looked up once per route.
  const ok = new Map(ROUTES.map((r) => [r, o.metrics.httpDuration.labels({ method: 'POST', route: r.path, status: '200' })]));

  const serve = (route: Route, req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    res.once('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      if (res.statusCode === 200) ok.get(route)!.observe(seconds);
      else o.metrics.httpDuration.observe({ method: 'POST', route: route.path, status: String(res.statusCode) }, seconds);
    });
    const run = (raw: Buffer | undefined, keyPid: string | undefined): void => {
      let pending: Promise<object>;
      try {
        pending = route.run(o.publisher, raw, keyPid);
      } catch (err) {
        fail(res, err);
        return;
      }
      pending.then(
        (value) => answer(res, 200, value),
        (err: unknown) => fail(res, err),
      );
    };

    // The key is checked before the body is read (an unread body is drained by node:http).
    let keyPid: string | undefined;
    try {
      keyPid = o.projects.authorize(bearerKey(req.headers.authorization), route.api);
    } catch (err) {
      fail(res, err);
      return;
    }
    // type-is's hasBody: without either header there is no body, which is the empty message.
    const declared = req.headers['content-length'];
    if (req.headers['transfer-encoding'] === undefined && (declared === undefined || Number.isNaN(Number(declared)))) {
      run(undefined, keyPid);
      return;
    }
    const length = declared !== undefined && !Number.isNaN(Number(declared)) ? parseInt(declared, 10) : null;
    // As raw-body: a declared length over the limit fails at once, a body growing over it when it
    // does; either way the answer waits for the end of the body, which is read and dropped.
    let failure: unknown = length !== null && length > limit ? tooLarge : undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      received += chunk.length;
      if (received > limit) {
        failure = tooLarge;
        chunks.length = 0;
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (failure === undefined && length !== null && received !== length) failure = sizeMismatch;
      if (failure !== undefined) return fail(res, failure);
      run(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received), keyPid);
    });
    req.on('error', () => fail(res, aborted));
  };

  return (req, res) => {
    if (req.method === 'POST') {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const route = path === PUSH_DATA_PATH ? ROUTES[0] : path === PUSH_DATA_BATCH_PATH ? ROUTES[1] : undefined;
      const encoding = req.headers['content-encoding'];
      if (route !== undefined && (!encoding || encoding.toLowerCase() === 'identity')) {
        serve(route, req, res);
        return;
      }
    }
    next(req, res);
  };
}
