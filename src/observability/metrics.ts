import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every counter an operator alerts on, in one registry per node (tests run several nodes
 * in one process, so nothing here is global).
 */
export class Metrics {
  readonly registry = new Registry();

  readonly connections = new Gauge({
    name: 'pushwire_connections',
    help: 'Live WebSocket connections on this node.',
    registers: [this.registry],
  });
  readonly connectionsOpened = new Counter({
    name: 'pushwire_connections_opened_total',
    help: 'WebSocket connections accepted.',
    registers: [this.registry],
  });
  readonly connectionsClosed = new Counter({
    name: 'pushwire_connections_closed_total',
    help: 'WebSocket connections closed, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'pushwire_connections_refused_total',
    help: 'WebSocket upgrades refused before a connection existed, by reason (not_found, draining, no_pid, unknown_project, connection_limit).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly projectConnections = new Gauge({
    name: 'pushwire_project_connections',
    help: 'Live WebSocket connections on this node, by project (one series per project with connections).',
    labelNames: ['pid'] as const,
    registers: [this.registry],
  });
  readonly slowConsumerCloses = new Counter({
    name: 'pushwire_slow_consumer_closes_total',
    help: 'Connections closed because their outbound queue exceeded --max-queue-bytes.',
    registers: [this.registry],
  });
  readonly historyGaps = new Counter({
    name: 'pushwire_history_gaps_total',
    help: 'Offset gaps seen on channels with history (this node missed publications; v1 subscribers resubscribe).',
    registers: [this.registry],
  });
  readonly recoveries = new Counter({
    name: 'pushwire_recoveries_total',
    help: 'Protocol v1 subscribes with since, by result (recovered, not_recovered).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'pushwire_pushes_total',
    help: 'Push requests by ingress (grpc, http) and result (ok or the gRPC code name).',
    labelNames: ['ingress', 'result'] as const,
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: 'pushwire_deliveries_total',
    help: 'Messages handed to local connections (one per connection per message).',
    registers: [this.registry],
  });
  readonly bytesSent = new Counter({
    name: 'pushwire_bytes_sent_total',
    help: 'WebSocket bytes written to sockets (frames, replies and deliveries).',
    registers: [this.registry],
  });
  readonly socketWrites = new Counter({
    name: 'pushwire_socket_writes_total',
    help: 'WebSocket socket writes by the write-coalescing flusher (deliveries_total / this = frames per write).',
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'pushwire_client_errors_total',
    help: 'Error replies sent to WebSocket clients, by code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly logins = new Counter({
    name: 'pushwire_logins_total',
    help: 'WebSocket logins by result (ok, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly limitRejections = new Counter({
    name: 'pushwire_limit_rejections_total',
    help: 'Work refused by a project limit, by project and limit (connections, pushes, requests).',
    labelNames: ['pid', 'limit'] as const,
    registers: [this.registry],
  });
  readonly busPublished = new Counter({
    name: 'pushwire_bus_published_total',
    help: 'Messages published to the cluster bus.',
    registers: [this.registry],
  });
  readonly busReceived = new Counter({
    name: 'pushwire_bus_received_total',
    help: 'Messages received from the cluster bus.',
    registers: [this.registry],
  });
  readonly busErrors = new Counter({
    name: 'pushwire_bus_errors_total',
    help: 'Cluster bus failures, by operation: publish (not sent), publish_unconfirmed (sent, no confirmation in time), decode.',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  /** What pushwire_bus_in_flight reports; the server points it at the Redis bus's publish window. */
  busInFlightSource: () => number = () => 0;
  readonly busInFlight = new Gauge({
    name: 'pushwire_bus_in_flight',
    help: 'Bus publishes sent to Redis and not yet answered by it (bounded by --bus-max-in-flight).',
    registers: [this.registry],
    collect: () => {
      this.busInFlight.set(this.busInFlightSource());
    },
  });
  readonly busGaps = new Counter({
    name: 'pushwire_bus_gaps_total',
    help: 'Times the bus resubscribed after losing its Redis subscriber connection: messages published meanwhile on its channels were lost.',
    registers: [this.registry],
  });
  readonly busGapChannels = new Counter({
    name: 'pushwire_bus_gap_channels_total',
    help: 'Channels affected by bus gaps (summed over gaps).',
    registers: [this.registry],
  });
  readonly busReady = new Gauge({
    name: 'pushwire_bus_ready',
    help: '1 while the cluster bus accepts pushes, else 0.',
    registers: [this.registry],
  });
  readonly redisShardUp = new Gauge({
    name: 'pushwire_redis_shard_up',
    help: 'Redis Cluster mode: 1 while the subscriber connection to a master (shard, "host:port") is connected and subscribed, 0 while it is down, by role (bus, presence, consumers).',
    labelNames: ['shard', 'role'] as const,
    registers: [this.registry],
  });
  readonly redisShardPublishErrors = new Counter({
    name: 'pushwire_redis_shard_publish_errors_total',
    help: 'Redis Cluster mode: bus publishes a master (shard, "host:port") failed or did not answer.',
    labelNames: ['shard'] as const,
    registers: [this.registry],
  });
  readonly channels = new Gauge({
    name: 'pushwire_channels',
    help: 'Distinct channels (topics, users, private topics) held by local connections.',
    registers: [this.registry],
  });
  readonly pushToWrite = new Histogram({
    name: 'pushwire_push_to_write_seconds',
    help: 'Time from a push being accepted by any node to its first socket write on this node.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly flushDuration = new Histogram({
    name: 'pushwire_flush_seconds',
    help: 'Duration of one write-coalescing flush: every socket that got frames in an event-loop turn written once.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'pushwire_http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly grpcDuration = new Histogram({
    name: 'pushwire_grpc_request_duration_seconds',
    help: 'gRPC unary call duration by method and code.',
    labelNames: ['method', 'code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  /**
   * Calls the gRPC fast path took, by method: plain numbers on the hot path, handed to the counter at
   * scrape time (a labelled prom-client inc costs about as much as the rest of a call's own work).
   */
  readonly grpcFastPathCounts = { PushData: 0, PushStream: 0 };
  private readonly grpcFastPathReported = { PushData: 0, PushStream: 0 };
  readonly grpcFastPathCalls = new Counter({
    name: 'pushwire_grpc_fast_path_calls_total',
    help: 'PushService calls served by the node:http2 fast path instead of grpc-js, by method.',
    labelNames: ['method'] as const,
    registers: [this.registry],
    collect: () => {
      for (const method of ['PushData', 'PushStream'] as const) {
        const delta = this.grpcFastPathCounts[method] - this.grpcFastPathReported[method];
        this.grpcFastPathReported[method] += delta;
        this.grpcFastPathCalls.inc({ method }, delta);
      }
    },
  });
  readonly backendEvents = new Counter({
    name: 'pushwire_backend_events_total',
    help: 'Client events (request, connect, disconnect) sent to backend consumers, by result (delivered, no_consumer, failed, dropped).',
    labelNames: ['type', 'result'] as const,
    registers: [this.registry],
  });
  readonly backendConsumers = new Gauge({
    name: 'pushwire_backend_consumers',
    help: 'Backend consumers (gRPC Connect streams and server WebSocket connections) on this node.',
    registers: [this.registry],
  });
  readonly backendOutbox = new Gauge({
    name: 'pushwire_backend_outbox',
    help: 'Connect/disconnect events waiting to reach the consumer directory (grows while Redis is down).',
    registers: [this.registry],
  });

  readonly projectsReloads = new Counter({
    name: 'pushwire_projects_reloads_total',
    help: 'Reloads of the projects file (SIGHUP or a change of the file), by result: ok, or failed (the file was refused and the previous projects kept).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly presenceHeartbeatsLate = new Counter({
    name: 'pushwire_presence_heartbeats_late_total',
    help: 'Times this node went a whole --presence-ttl without a presence keep-alive reaching the store (event loop starved, process stopped, Redis unreachable): other nodes may have taken it for dead and its users left until the next keep-alive landed. Once per episode.',
    registers: [this.registry],
  });
  readonly presenceErrors = new Counter({
    name: 'pushwire_presence_errors_total',
    help: 'Presence store failures, by operation (add, remove, refresh, sweep).',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly channelPresenceErrors = new Counter({
    name: 'pushwire_channel_presence_errors_total',
    help: 'Channel presence failures (protocol v1 presence and join/leave), by operation: add, remove, refresh, list (a presence command answered 30006), join, leave (the event was not published).',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly channelPresenceExpired = new Counter({
    name: 'pushwire_channel_presence_expired_total',
    help: 'Channel presence members of dead nodes (not refreshed within --presence-ttl) that this node pruned from Redis; a joinLeave member got its leave then.',
    registers: [this.registry],
  });
  readonly channelPresenceMembers = new Gauge({
    name: 'pushwire_channel_presence_members',
    help: 'Protocol v1 subscriptions on this node to channels with presence or join/leave.',
    registers: [this.registry],
  });
  readonly presenceWatchers = new Gauge({
    name: 'pushwire_presence_watchers',
    help: 'WatchOnlineUsers streams open on this node.',
    registers: [this.registry],
  });
  readonly presenceWatchResets = new Counter({
    name: 'pushwire_presence_watch_resets_total',
    help: 'Resets sent to WatchOnlineUsers streams, by reason (lagging, gap).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly grpcSubscribers = new Gauge({
    name: 'pushwire_grpc_subscribers',
    help: 'SubscribeService streams open on this node.',
    registers: [this.registry],
  });

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry });
    // Both series exist from the start, so increase() sees the first failed reload.
    for (const result of ['ok', 'failed']) this.projectsReloads.inc({ result }, 0);
  }
}
