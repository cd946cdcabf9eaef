import type { Express } from 'express';
import type { HttpAppOptions } from './options.js';

/** Liveness, readiness (bus up and not draining) and the Prometheus scrape. */
export function healthRoutes(app: Express, o: HttpAppOptions): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = o.isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(o.metrics.registry.contentType).send(await (o.metricsText ?? (() => o.metrics.registry.metrics()))());
  });
}
