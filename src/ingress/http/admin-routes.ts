import { createHash, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { ListNodesResponse } from '../../../gen/pushwire/v1/cluster.js';
import { Code, PushwireError, invalidArgument } from '../../core/errors.js';
import { protoRoot } from '../grpc/proto-files.js';
import { nodeInfo } from '../presence-messages.js';
import type { HttpAppOptions } from './options.js';
import { jsonBody, send } from './route-helpers.js';

/** The metric families the page turns into rates and latency (all this node's own). */
const RATE_METRICS = ['pushwire_pushes_total', 'pushwire_deliveries_total', 'pushwire_bytes_sent_total'] as const;
const LATENCY_METRIC = 'pushwire_push_to_write_seconds';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * The admin page, on only with --admin-key: static files (admin/ at the package root, no
 * framework) that call two JSON endpoints with `Authorization: Bearer <admin key>`:
 * GET /admin/api/overview (nodes from the cluster's node list, users and connections per project
 * from presence, local channels, and this node's counters and latency histogram, which the page
 * turns into rates) and POST /admin/api/push (a test message, as the REST bridge's PushData, any
 * project). The files hold no secret, so they are served without the key; the API refuses a
 * wrong one with 401.
 */
export function adminRoutes(app: Express, o: HttpAppOptions, adminKey: string): void {
  const expected = digest(adminKey);
  const requireKey = (req: Request, res: Response, next: NextFunction): void => {
    const header = req.get('authorization') ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    // Digests have one length, so the comparison is constant-time whatever was sent.
    if (given !== '' && timingSafeEqual(digest(given), expected)) return next();
    send(res, Code.UNAUTHENTICATED, 'wrong or missing admin key');
  };
  const noStore = (_req: Request, res: Response, next: NextFunction): void => {
    res.set('Cache-Control', 'no-store');
    // Scripts and styles only from the page's own files; nothing may frame it.
    res.set('Content-Security-Policy', "default-src 'self'; frame-ancestors 'none'");
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  };

  app.get('/admin', (_req, res) => res.redirect(301, '/admin/'));
  app.get('/admin/api/overview', noStore, requireKey, async (_req, res) => {
    const now = Date.now();
    const [nodes, projects, families] = await Promise.all([o.node.online.nodes(), projectRows(o), o.metrics.registry.getMetricsAsJSON()]);
    const counters: Record<string, number> = {};
    for (const name of RATE_METRICS) {
      const family = families.find((f) => f.name === name);
      counters[name] = (family?.values ?? []).reduce((sum, v) => sum + Number(v.value), 0);
    }
    // Pushes that failed, for the error rate: every result label but "ok".
    const pushes = families.find((f) => f.name === 'pushwire_pushes_total')?.values ?? [];
    counters.pushwire_push_errors_total = pushes.filter((v) => v.labels.result !== 'ok').reduce((sum, v) => sum + Number(v.value), 0);
    // prom-client's JSON names each histogram sample (_bucket, _sum, _count); its types omit it.
    const latency = (families.find((f) => f.name === LATENCY_METRIC)?.values ?? []) as Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>;
    res.json({
      nodeId: o.node.nodeId,
      time: now,
      nodes: (ListNodesResponse.toJSON({ nodes: nodes.map((n) => nodeInfo(n, now)) }) as { nodes?: unknown[] }).nodes ?? [],
      projects,
      counters,
      // Cumulative buckets (le → count) and the count, as Prometheus keeps them.
      latency: {
        buckets: latency.filter((v) => v.metricName === `${LATENCY_METRIC}_bucket`).map((v) => ({ le: String(v.labels.le), count: Number(v.value) })),
        count: Number(latency.find((v) => v.metricName === `${LATENCY_METRIC}_count`)?.value ?? 0),
        sum: Number(latency.find((v) => v.metricName === `${LATENCY_METRIC}_sum`)?.value ?? 0),
      },
    });
  });

  const body = express.raw({ type: () => true, limit: Math.ceil((o.maxPushBytes * 4) / 3) + 64 * 1024 });
  app.post('/admin/api/push', noStore, requireKey, body, async (req, res) => {
    const b = jsonBody(req) as Record<string, unknown> | undefined;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw invalidArgument('the body must be a JSON object');
    const text = (name: string): string => {
      const v = b[name] ?? '';
      if (typeof v !== 'string') throw invalidArgument(`"${name}" must be a string`);
      return v;
    };
    const result = await o.publisher.push(
      { pid: text('pid'), topic: text('topic'), uid: text('uid'), data: Buffer.from(text('data'), 'utf8') },
      'admin',
    );
    res.json(result);
  });
  app.all(/^\/admin\/api\//, (_req, res) => {
    send(res, Code.NOT_FOUND, 'Not Found');
  });
  app.use('/admin', noStore, express.static(join(protoRoot(), 'admin'), { index: 'index.html', redirect: false, fallthrough: true }));
}

/** Per project: users and connections cluster-wide (presence), connections and channels on this node. */
async function projectRows(o: HttpAppOptions): Promise<unknown[]> {
  const local = o.node.hub.projectCounts();
  return Promise.all(
    o.projects.pids.map(async (pid) => {
      let online: { users: number; connections: number } | { error: string };
      try {
        online = await o.node.online.count(pid);
      } catch (err) {
        // Presence down (Redis unreachable): the row still shows what this node knows.
        online = { error: err instanceof PushwireError ? err.message : 'presence unavailable' };
      }
      const here = local.get(pid) ?? { connections: 0, channels: 0 };
      return { pid, ...online, localConnections: here.connections, localChannels: here.channels };
    }),
  );
}
