import { afterAll, afterEach, beforeAll } from 'vitest';
import type { WebSocket } from 'ws';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { pushClient } from './grpc-client.js';
import { startTestServer, type TestServer } from './in-process.js';
import { TestClient } from './ws-client.js';

export interface TestNode {
  /** The in-process node; started in beforeAll, so read it inside hooks and tests only. */
  readonly server: TestServer;
  /** A gRPC client for the node, created on first use and closed in afterAll. */
  readonly grpc: PushServiceClient;
  /** Connects a client (to the node's /ws unless `url` is given); afterEach closes it. */
  connect(url?: string, options?: ConstructorParameters<typeof WebSocket>[2]): Promise<TestClient>;
}

/**
 * Registers the hooks of a describe block that runs its tests against one in-process node:
 * beforeAll starts it with the CLI flags `args` (a function is called in beforeAll, for flags
 * known only then), afterEach closes the clients `connect` opened, afterAll closes the gRPC
 * client and shuts the node down.
 */
export function useTestNode(args: string[] | (() => string[]) = []): TestNode {
  let server: TestServer | undefined;
  let grpc: PushServiceClient | undefined;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    server = await startTestServer(typeof args === 'function' ? args() : args);
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
  });
  afterAll(async () => {
    grpc?.close();
    await server?.shutdown();
  });

  const node: TestNode = {
    get server(): TestServer {
      if (!server) throw new Error('useTestNode: the node is not running (it starts in beforeAll)');
      return server;
    },
    get grpc(): PushServiceClient {
      return (grpc ??= pushClient(node.server.grpcAddress));
    },
    async connect(url = node.server.wsUrl, options = {}): Promise<TestClient> {
      const c = await TestClient.connect(url, options);
      clients.push(c);
      return c;
    },
  };
  return node;
}
