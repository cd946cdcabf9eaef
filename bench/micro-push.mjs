#!/usr/bin/env node
// Usage: node bench/micro-push.mjs [dist dir, default ./dist] [redis URL: RedisBus instead of MemoryBus]. Calls the gRPC PushData handler in-process with a fake
// call and a MemoryBus, so the figure is pushwire's own cost per call (wrapper, auth, validation, envelope, metrics),
// without grpc-js/http2 and without Redis. Compare builds: node bench/micro-push.mjs /path/to/other/dist
const dist = process.argv[2] ? new URL(process.argv[2], `file://${process.cwd()}/`).pathname.replace(/\/$/, '') : new URL('../dist', import.meta.url).pathname;
const { Metrics } = await import(`${dist}/src/observability/metrics.js`);
const { PushNode } = await import(`${dist}/src/core/node.js`);
const { MemoryBus } = await import(`${dist}/src/cluster/memory-bus.js`);
const { RedisBus } = await import(`${dist}/src/cluster/redis-bus.js`);
const redisUrl = process.argv[3];
const { ProjectRegistry } = await import(`${dist}/src/core/projects/registry.js`);
const { pushService } = await import(`${dist}/src/ingress/grpc/push-service.js`);
const { Metadata } = await import('@grpc/grpc-js');
const metrics = new Metrics('mb');
const projects = new ProjectRegistry({ projects: [{ pid: 'default', name: 'default', authenticator: {}, limits: {} }], apiKeys: new Map() });
const logger = { error() {}, warn() {}, info() {}, debug() {} };
const bus = redisUrl ? new RedisBus({ url: redisUrl, prefix: 'micro:', commandTimeoutMs: 5000, logger }) : new MemoryBus();
const node = new PushNode({ nodeId: 'mb', bus, projects, metrics, logger, maxPushBytes: 262144, idempotencyWindowMs: 1000, unsubscribeDelayMs: 0 });
await node.start();
while (!node.isBusReady()) await new Promise((r) => setTimeout(r, 20));
const svc = pushService({ publisher: node.publisher, projects, metrics, logger });
const md = new Metadata();
const data = Buffer.alloc(100, 120);
const call = () => ({ request: { uid: '', topic: 'nobody', data, pid: '', idempotencyKey: '', uids: [], cids: [], tags: [] }, metadata: md });
async function run(n) {
  let done = 0;
  await new Promise((resolve) => {
    let inflight = 0;
    let sent = 0;
    const pump = () => {
      while (inflight < 256 && sent < n) {
        inflight++;
        sent++;
        svc.pushData(call(), (err) => {
          if (err) throw new Error(err.details);
          inflight--;
          if (++done === n) resolve();
          else pump();
        });
      }
    };
    pump();
  });
}
await run(200000);
const t0 = process.cpuUsage();
const N = 500000;
await run(N);
const c = process.cpuUsage(t0);
console.log(`${dist}: ${((c.user + c.system) / N).toFixed(2)} µs CPU per PushData (handler + publisher + ${redisUrl ? 'RedisBus, Redis CPU not included' : 'MemoryBus'})`);
await node.close();
process.exit(0);
