import { ClusterServiceClient, ListNodesResponse } from '../../gen/pushwire/v1/cluster.js';
import { defineCommand } from './command.js';
import { GRPC_FLAGS, deadline, grpcTarget, unary } from './grpc-target.js';
import { table } from './table.js';

/** `pushwire nodes`: ClusterService.ListNodes, as a table or JSON. */
export const nodes = defineCommand(
  'nodes',
  {
    usage: 'pushwire nodes [--grpc HOST:PORT] [--key KEY] [--json]',
    description: 'Lists every live node of the cluster the node at --grpc belongs to.',
    flags: [...GRPC_FLAGS, { name: 'json', help: 'print the ListNodesResponse as proto3 JSON' }],
  },
  async (parsed) => {
    const target = grpcTarget(parsed);
    const client = new ClusterServiceClient(target.address, target.credentials);
    let res: ListNodesResponse;
    try {
      res = await unary<ListNodesResponse>(target.address, (done) => client.listNodes({}, target.metadata, { deadline: deadline() }, done));
    } finally {
      client.close();
    }
    if (parsed.has('json')) {
      process.stdout.write(`${JSON.stringify(ListNodesResponse.toJSON(res))}\n`);
      return;
    }
    process.stdout.write(
      table(
        ['NODE', 'WS', 'HTTP', 'GRPC', 'VERSION', 'UPTIME', 'CONNECTIONS', 'SUBSCRIPTIONS'],
        res.nodes.map((n) => [
          n.nodeId,
          n.wsAddress,
          n.httpAddress,
          n.grpcAddress,
          n.version,
          uptime(Number(n.uptimeMs)),
          String(n.connections),
          String(n.subscriptions),
        ]),
      ),
    );
  },
);

function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
