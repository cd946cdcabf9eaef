import express, { type Express, type Request, type Response } from 'express';
import { Code, PushwireError, invalidArgument } from '../../core/errors.js';
import { SNAPSHOT_CHUNK, WATCH_BUFFER, watchOnlineUsers } from '../../core/presence-watch.js';
import { openSubscription } from '../../core/subscriptions.js';
import { ListNodesResponse } from '../../../gen/pushwire/v1/cluster.js';
import {
  CountOnlineResponse,
  GetPresenceResponse,
  ListOnlineUsersResponse,
  WatchOnlineUsersResponse,
} from '../../../gen/pushwire/v1/presence.js';
import { SubscribeResponse } from '../../../gen/pushwire/v1/subscribe.js';
import { nodeInfo, onlineUser, subscribeResponse, userPresence, watchResponse } from '../presence-messages.js';
import type { HttpAppOptions } from './options.js';
import { authorize, jsonBody, send } from './route-helpers.js';
import { decodeProtoJson, type FieldSpec } from './proto-json.js';
import { beginRecoveries, gapMessage, runRecoveries, SubscribeSink } from '../subscribe-stream.js';
import type { StreamPosition } from '../../../gen/pushwire/v1/client.js';
import { statusBody } from './status.js';

/** The project named in the path, checked against the caller's key (res.locals.keyPid). */
const pidOf = (o: HttpAppOptions, req: Request, res: Response): string =>
  o.node.online.resolvePid(String(req.params.pid), res.locals.keyPid as string | undefined);

/** A query parameter given once (the last one wins, as in grpc-gateway), by proto or JSON name. */
function param(req: Request, ...names: string[]): string | undefined {
  for (const name of names) {
    const v: unknown = req.query[name];
    if (Array.isArray(v)) return String(v.at(-1));
    if (typeof v === 'string') return v;
  }
  return undefined;
}

function int32(name: string, value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  if (!/^-?\d+$/.test(value) || Math.abs(Number(value)) > 2 ** 31 - 1) {
    throw invalidArgument(`invalid value for int32 field ${name}: ${JSON.stringify(value)}`);
  }
  return Number(value);
}

const STREAM_POSITION = { typeName: 'pushwire.v1.StreamPosition', fields: [
  { name: 'offset', kind: 'uint64' },
  { name: 'epoch', kind: 'string' },
] } as const satisfies FieldSpec['of'];

const SUBSCRIBE_REQUEST: readonly FieldSpec[] = [
  { name: 'topics', kind: 'strings' },
  { name: 'uid', kind: 'string' },
  { name: 'private_topics', kind: 'strings' },
  { name: 'since', kind: 'messageMap', of: STREAM_POSITION },
  { name: 'private_since', kind: 'messageMap', of: STREAM_POSITION },
];

/** A decoded map<string, StreamPosition> with proto3 defaults filled in. */
function positions(map: unknown): Record<string, StreamPosition> {
  const out: Record<string, StreamPosition> = {};
  for (const [topic, p] of Object.entries((map ?? {}) as Record<string, Record<string, unknown>>)) {
    out[topic] = { offset: (p.offset as string | undefined) ?? '0', epoch: (p.epoch as string | undefined) ?? '' };
  }
  return out;
}

/**
 * REST bridge for OnlineUsersService, SubscribeService and ClusterService, grpc-gateway style:
 * path parameters, query parameters for GETs (unknown ones ignored, as grpc-gateway does),
 * proto3 JSON bodies and responses, and server streams as newline-delimited `{"result":...}`
 * objects (a failure mid-stream is a final `{"error":<google.rpc.Status>}` line).
 */
export function presenceRoutes(app: Express, o: HttpAppOptions): void {
  const { online } = o.node;
  // The push routes' limit (and error message); 1000 names of at most 256 bytes fit in it.
  const rawBody = express.raw({ type: () => true, limit: Math.ceil((o.maxPushBytes * 4) / 3) + 64 * 1024 });

  app.get('/v1/projects/:pid/online-users', authorize(o.projects, 'ListOnlineUsers'), async (req, res) => {
    const pid = pidOf(o, req, res);
    const page = await online.list(pid, int32('page_size', param(req, 'page_size', 'pageSize')), param(req, 'page_token', 'pageToken') ?? '');
    res.json(ListOnlineUsersResponse.toJSON({ users: page.items.map(onlineUser), nextPageToken: page.nextPageToken, totalSize: page.total }));
  });

  app.get('/v1/projects/:pid/online-users\\:count', authorize(o.projects, 'CountOnline'), async (req, res) => {
    res.json(CountOnlineResponse.toJSON(await online.count(pidOf(o, req, res))));
  });

  app.get('/v1/projects/:pid/presence', authorize(o.projects, 'GetPresence'), async (req, res) => {
    const pid = pidOf(o, req, res);
    const raw: unknown = req.query.uids;
    const uids = raw === undefined ? [] : Array.isArray(raw) ? raw.map(String) : [String(raw)];
    res.json(GetPresenceResponse.toJSON({ users: (await online.get(pid, uids)).map(userPresence) }));
  });

  app.post('/v1/projects/:pid/presence\\:get', authorize(o.projects, 'GetPresence'), rawBody, async (req, res) => {
    const pid = pidOf(o, req, res);
    const fields = decodeProtoJson(jsonBody(req), 'pushwire.v1.GetPresenceRequest', [{ name: 'uids', kind: 'strings' }]);
    const uids = (fields.uids as string[] | undefined) ?? [];
    res.json(GetPresenceResponse.toJSON({ users: (await online.get(pid, uids)).map(userPresence) }));
  });

  app.get('/v1/projects/:pid/online-users\\:watch', authorize(o.projects, 'WatchOnlineUsers'), async (req, res) => {
    const pid = pidOf(o, req, res);
    const stream = new NdjsonStream(res);
    o.metrics.presenceWatchers.inc();
    try {
      await watchOnlineUsers(online.presence, pid, (item) => stream.write(WatchOnlineUsersResponse.toJSON(watchResponse(item))), stream.signal, {
        chunkSize: SNAPSHOT_CHUNK,
        maxBuffered: WATCH_BUFFER,
        onReset: (reason) => o.metrics.presenceWatchResets.inc({ reason }),
      });
    } catch (err) {
      if (!stream.started) throw err;
      stream.fail(err);
    } finally {
      o.metrics.presenceWatchers.dec();
    }
    stream.end();
  });

  app.post('/v1/projects/:pid/subscribe', authorize(o.projects, 'Subscribe'), rawBody, async (req, res) => {
    const pid = pidOf(o, req, res);
    const fields = decodeProtoJson(jsonBody(req), 'pushwire.v1.SubscribeRequest', SUBSCRIBE_REQUEST);
    const uid = (fields.uid as string | undefined) ?? '';
    const topics = (fields.topics as string[] | undefined) ?? [];
    const privateTopics = (fields.private_topics as string[] | undefined) ?? [];
    const stream = new NdjsonStream(res);
    const sink = new SubscribeSink(
      (message) => {
        if (res.writableLength > o.maxQueueBytes) {
          stream.fail(new PushwireError(Code.RESOURCE_EXHAUSTED, `slow subscriber: more than ${o.maxQueueBytes} bytes unsent`));
          return;
        }
        void stream.write(SubscribeResponse.toJSON(message));
      },
      (key) => stream.fail(new PushwireError(Code.ABORTED, gapMessage(key))),
    );
    // Recovering topics buffer live publications from the moment they are joined (as over gRPC).
    const recoveries = beginRecoveries(sink, pid, {
      uid,
      topics,
      privateTopics,
      since: positions(fields.since),
      privateSince: positions(fields.private_since),
    });
    let session;
    try {
      session = await openSubscription(o.node.hub, o.node.cids.next(), pid, { topics, uid, privateTopics }, sink);
    } catch (err) {
      sink.positioned.clear();
      throw err;
    }
    o.metrics.grpcSubscribers.inc();
    try {
      // Headers now: the client knows every subscription is in place.
      stream.start();
      await runRecoveries(o.node, o.metrics, sink, pid, uid, recoveries, stream.signal);
      await stream.closed;
    } finally {
      o.node.hub.remove(session);
      o.metrics.grpcSubscribers.dec();
    }
    stream.end();
  });

  app.get('/v1/nodes', authorize(o.projects, 'ListNodes'), async (_req, res) => {
    const now = Date.now();
    res.json(ListNodesResponse.toJSON({ nodes: (await online.nodes()).map((n) => nodeInfo(n, now)) }));
  });

  for (const path of [
    '/v1/projects/:pid/online-users',
    '/v1/projects/:pid/online-users\\:count',
    '/v1/projects/:pid/online-users\\:watch',
    '/v1/projects/:pid/presence',
    '/v1/projects/:pid/presence\\:get',
    '/v1/projects/:pid/subscribe',
    '/v1/nodes',
  ]) {
    app.all(path, (_req, res) => send(res, Code.UNIMPLEMENTED, 'Method Not Allowed'));
  }
}

/**
 * A grpc-gateway server stream over HTTP/1.1: status 200 and headers on start, one JSON object
 * per line, backpressure through `write`, and `signal`/`closed` when the client goes away or
 * the stream fails.
 */
class NdjsonStream {
  started = false;
  private readonly abort = new AbortController();
  readonly signal = this.abort.signal;
  readonly closed: Promise<void>;

  constructor(private readonly res: Response) {
    this.closed = new Promise((resolve) => {
      this.signal.addEventListener('abort', () => resolve(), { once: true });
      // The response's close is the client going away (or the stream ending). Not the request's:
      // once a handler has read the body (subscribe), the request closes at once, client or not.
      res.on('close', () => this.abort.abort());
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.res.status(200).set({ 'content-type': 'application/json', 'cache-control': 'no-store' });
    this.res.flushHeaders();
  }

  write(result: unknown): Promise<void> {
    this.start();
    if (this.signal.aborted) return Promise.resolve();
    if (this.res.write(`${JSON.stringify({ result })}\n`)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.signal.removeEventListener('abort', done);
        resolve();
      };
      this.res.on('drain', done);
      this.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Ends the stream with a final error line (grpc-gateway's stream error shape). */
  fail(err: unknown): void {
    if (this.signal.aborted) return;
    const known = err instanceof PushwireError;
    this.start();
    this.res.write(`${JSON.stringify({ error: statusBody(known ? err.code : Code.INTERNAL, known ? err.message : 'internal error') })}\n`);
    this.abort.abort();
    this.res.end();
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}
