import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { BackendRouter } from '../../core/backend/router.js';
import type { Hub } from '../../core/hub.js';
import type { OnlineUsers } from '../../core/online-users.js';
import type { Publisher } from '../../core/publisher.js';
import { RateLimiter } from '../../core/projects/rate-limiter.js';
import type { ProjectRegistry } from '../../core/projects/registry.js';
import { DEFAULT_PID } from '../../core/targeting.js';
import type { Message } from '../../core/message.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { CloseCode } from './close-codes.js';
import { WsConnection } from './connection.js';
import { Flusher } from './flusher.js';
import { OnlineReporter } from './online-report.js';
import { deliveryFrame } from './frames.js';
import { originAllowed } from '../origin.js';
import type { ChannelHistory } from '../../core/history.js';
import { V1Connection } from './v1/connection.js';
import type { ChannelMembers } from '../../core/channel-members.js';
import { publicationFrame, type V1Format } from './v1/encode.js';

/** Protocol v1 subprotocols (docs/protocol.md, "Protocol v1"); none: the legacy protocol. */
export const V1_SUBPROTOCOLS: ReadonlyMap<string, V1Format> = new Map([
  ['pushwire.v1.json', 'json'],
  ['pushwire.v1.proto', 'proto'],
]);

export interface WsEdgeOptions {
  nodeId: string;
  hub: Hub;
  backends: BackendRouter;
  publisher: Publisher;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  pingTimeoutMs: number;
  maxMessageBytes: number;
  maxQueueBytes: number;
  /** A cluster-unique connection id (the node's CidSource, shared with gRPC subscribers). */
  nextCid: () => string;
  /** Cluster-wide presence, for the online report to server connections. */
  online: OnlineUsers;
  onlineReportIntervalMs: number;
  /** WebSocket connections this node holds at most; the next upgrade gets 503. */
  maxConnections: number;
  /** Topics one connection may hold (30007 beyond). */
  maxSubscriptions: number;
  /** The node's allowed browser origins (a project's own list wins); undefined = same origin. */
  allowedOrigins: readonly string[] | undefined;
  /** Upgrade request headers must arrive within this (slowloris), ms. */
  headerTimeoutMs: number;
  /** The whole upgrade request must arrive within this, ms. */
  requestTimeoutMs: number;
  /** Channel options and history reads, for v1 subscriptions. */
  history: ChannelHistory;
  /** Channel presence and join/leave, for v1 subscriptions. */
  members: ChannelMembers;
  /** Protocol v1 keepalive: ping after this long, close 3001 when nothing comes back within the pong timeout. */
  v1PingIntervalMs: number;
  v1PongTimeoutMs: number;
}

/**
 * TCP connections the WebSocket port keeps beyond maxConnections, so that the excess still
 * reads a 503 (and not a reset) while sockets that never upgrade are bounded too. Beyond it
 * node:http closes new sockets at once, leaving descriptors for HTTP, gRPC and Redis.
 */
const UPGRADE_SLACK = 64;

export const WS_PATH = '/ws';
/** ws-cluster's path, so its clients only change the host. */
export const WSC_PATH = '/connect';
const isWsPath = (path: string): boolean => path === WS_PATH || path === WSC_PATH;

/**
 * The WebSocket listener: upgrades on /ws (and ws-cluster's /connect), gives every connection a cluster-unique cid,
 * closes clients that go silent, and drains everyone with 1012 on shutdown.
 */
export class WsEdge {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<WsConnection>();
  private readonly v1 = new Set<V1Connection>();
  private readonly flusher: Flusher;
  private readonly encodeDelivery: (m: Message) => Buffer;
  private readonly encodeV1Json: (m: Message) => Buffer;
  private readonly encodeV1Proto: (m: Message) => Buffer;
  private readonly perProject = new Map<string, number>();
  private readonly requestRates = new RateLimiter();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly reporter: OnlineReporter;
  private draining = false;

  /** True while the last flush left sockets to write in the next turn (the node holds back deliveries meanwhile). */
  get writing(): boolean {
    return this.flusher.behind;
  }

  constructor(private readonly o: WsEdgeOptions) {
    this.reporter = new OnlineReporter(o.online, o.nodeId, o.onlineReportIntervalMs, () => this.servers(), o.logger, o.maxQueueBytes / 2);
    this.flusher = new Flusher(o.metrics);
    // One encoder for the node: Outbound caches its result, so each message is framed once.
    this.encodeDelivery = (m) => {
      this.flusher.stamp(m.publishedAt);
      return deliveryFrame(m.data);
    };
    // Likewise one encoder per v1 format: a publication is framed once per node per protocol.
    this.encodeV1Json = (m) => {
      this.flusher.stamp(m.publishedAt);
      return publicationFrame('json', m);
    };
    this.encodeV1Proto = (m) => {
      this.flusher.stamp(m.publishedAt);
      return publicationFrame('proto', m);
    };
    this.wss = new WebSocketServer({
      // A v1 subprotocol when offered; otherwise what ws always did (the first one offered), so
      // legacy handshakes stay byte for byte.
      handleProtocols: (protocols: Set<string>) => {
        for (const p of protocols) if (V1_SUBPROTOCOLS.has(p)) return p;
        const first = protocols.values().next();
        return first.done ? false : first.value;
      },
      noServer: true,
      maxPayload: o.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
    // Checked every second instead of node's 30 s, so header/request timeouts hold to about a second.
    this.server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
      const status = isWsPath(new URL(req.url ?? '/', 'http://x').pathname) ? 426 : 404;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 426 ? 'Upgrade Required\n' : 'Not Found\n');
    });
    this.server.headersTimeout = o.headerTimeoutMs;
    this.server.requestTimeout = o.requestTimeoutMs;
    this.server.maxConnections = o.maxConnections + UPGRADE_SLACK;
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  get size(): number {
    return this.connections.size + this.v1.size;
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const every = Math.max(100, Math.min(1000, this.o.pingTimeoutMs / 4, this.o.v1PongTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
    this.reporter.start();
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops accepting, closes every client with 1012, waits (bounded) until they are gone. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.draining = true;
    clearInterval(this.sweeper);
    this.reporter.stop();
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const conn of this.connections) conn.close(CloseCode.SERVICE_RESTART, 'service restart', 'shutdown');
    for (const conn of this.v1) conn.close(CloseCode.SERVICE_RESTART, 'service restart', 'shutdown');
    const deadline = Date.now() + timeoutMs;
    while (this.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.server.closeAllConnections();
    await stopped;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const refuse = (why: string, status: number, reason: string, body: string): void => {
      this.o.metrics.connectionsRefused.inc({ reason: why });
      reject(socket, status, reason, body);
    };
    if (!isWsPath(url.pathname)) return refuse('not_found', 404, 'Not Found', 'Not Found');
    if (this.draining) return refuse('draining', 503, 'Service Unavailable', 'Service Unavailable');
    if (this.connections.size >= this.o.maxConnections) {
      this.o.metrics.limitRejections.inc({ pid: '', limit: 'node_connections' });
      return refuse('node_connections', 503, 'Service Unavailable', `node is at its connection limit (${this.o.maxConnections})`);
    }
    const token = url.searchParams.get('token') || undefined;
    const requested = url.searchParams.get('pid') || claimedPid(token);
    const pid = requested ?? DEFAULT_PID;
    const project = this.o.projects.get(pid);
    if (project === undefined) {
      return requested === undefined
        ? refuse('no_pid', 400, 'Bad Request', 'pid required: give ?pid= or a token with a pid claim')
        : refuse('unknown_project', 404, 'Not Found', `unknown project "${requested}"`);
    }
    if (!originAllowed(req.headers.origin, req.headers.host, project.allowedOrigins ?? this.o.allowedOrigins)) {
      this.o.metrics.limitRejections.inc({ pid, limit: 'origin' });
      return reject(socket, 403, 'Forbidden', `origin ${JSON.stringify(req.headers.origin)} is not allowed (see --allowed-origins)`);
    }
    const max = project.limits.maxConnections;
    if (max !== undefined && (this.perProject.get(pid) ?? 0) >= max) {
      this.o.metrics.limitRejections.inc({ pid, limit: 'connections' });
      return refuse('connection_limit', 429, 'Too Many Requests', `project "${pid}" is at its connection limit (${max} on this node)`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => this.accept(ws, socket, pid, token));
  }

  private accept(ws: WebSocket, socket: Duplex, pid: string, token: string | undefined): void {
    const format = V1_SUBPROTOCOLS.get(ws.protocol);
    if (format !== undefined) return this.acceptV1(ws, socket, pid, token, format);
    const cid = this.o.nextCid();
    const conn = new WsConnection(ws, socket, cid, pid, {
      hub: this.o.hub,
      backends: this.o.backends,
      publisher: this.o.publisher,
      projects: this.o.projects,
      metrics: this.o.metrics,
      logger: this.o.logger,
      flusher: this.flusher,
      encodeDelivery: this.encodeDelivery,
      maxQueueBytes: this.o.maxQueueBytes,
      requestRates: this.requestRates,
      maxSubscriptions: this.o.maxSubscriptions,
      onClosed: (c) => {
        this.connections.delete(c);
        this.count(pid, -1);
      },
    });
    this.connections.add(conn);
    this.count(pid, 1);
    conn.start(token);
  }

  private acceptV1(ws: WebSocket, socket: Duplex, pid: string, token: string | undefined, format: V1Format): void {
    const conn = new V1Connection(ws, socket, this.o.nextCid(), pid, format, token, {
      hub: this.o.hub,
      history: this.o.history,
      members: this.o.members,
      backends: this.o.backends,
      publisher: this.o.publisher,
      projects: this.o.projects,
      metrics: this.o.metrics,
      logger: this.o.logger,
      flusher: this.flusher,
      nodeId: this.o.nodeId,
      encodeJson: this.encodeV1Json,
      encodeProto: this.encodeV1Proto,
      maxQueueBytes: this.o.maxQueueBytes,
      requestRates: this.requestRates,
      pingIntervalMs: this.o.v1PingIntervalMs,
      pongTimeoutMs: this.o.v1PongTimeoutMs,
      maxSubscriptions: this.o.maxSubscriptions,
      onClosed: (c) => {
        this.v1.delete(c);
        this.count(pid, -1);
      },
    });
    this.v1.add(conn);
    this.count(pid, 1);
  }

  /** Bookkeeping of one connection opened (+1) or closed (-1), after the connection sets were updated. */
  private count(pid: string, delta: 1 | -1): void {
    this.o.metrics.connections.set(this.size);
    if (delta > 0) this.o.metrics.connectionsOpened.inc();
    const n = (this.perProject.get(pid) ?? 0) + delta;
    if (n > 0) this.perProject.set(pid, n);
    else this.perProject.delete(pid);
    // A project's series goes when its last connection does: a removed project leaves no stale gauge.
    if (n > 0) this.o.metrics.projectConnections.set({ pid }, n);
    else this.o.metrics.projectConnections.remove({ pid });
  }

  private *servers(): Iterable<WsConnection> {
    for (const conn of this.connections) if (conn.isServer) yield conn;
  }

  private sweep(): void {
    const now = Date.now();
    const cutoff = now - this.o.pingTimeoutMs;
    const quiet = now - this.o.pingTimeoutMs / 2;
    for (const conn of this.connections) {
      if (conn.idleSince(cutoff)) conn.close(CloseCode.PING_TIMEOUT, 'ping timeout', 'ping_timeout');
      else conn.probe(quiet, now, this.o.pingTimeoutMs / 4);
    }
    for (const conn of this.v1) conn.keepalive(now);
  }
}

function reject(socket: Duplex, status: number, reason: string, body: string): void {
  const text = `${body}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

/**
 * The `pid` claim of a JWT, read without verifying it: it only picks the project whose keys
 * then verify the token at login (which also refuses a claim naming another project).
 */
function claimedPid(token: string | undefined): string | undefined {
  const payload = token?.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const pid: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')).pid;
    return typeof pid === 'string' && pid !== '' ? pid : undefined;
  } catch {
    return undefined;
  }
}
