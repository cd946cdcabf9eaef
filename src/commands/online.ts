import {
  CountOnlineResponse,
  ListOnlineUsersResponse,
  OnlineUsersServiceClient,
  type OnlineUser,
} from '../../gen/pushwire/v1/presence.js';
import { option } from './args.js';
import { defineCommand } from './command.js';
import { GRPC_FLAGS, deadline, grpcTarget, unary } from './grpc-target.js';
import { table } from './table.js';

/** Pages of this size until the listing is complete. */
const PAGE_SIZE = 1000;

/** `pushwire online`: OnlineUsersService.CountOnline and ListOnlineUsers (every page), cluster-wide. */
export const online = defineCommand(
  'online',
  {
    usage: 'pushwire online --pid PID [--grpc HOST:PORT] [--key KEY] [--json]',
    description: 'Prints how many users and connections a project has online, cluster-wide, then each user.',
    flags: [
      { name: 'pid', value: 'PID', help: 'the project', default: 'default' },
      ...GRPC_FLAGS,
      { name: 'json', help: 'print {"count": CountOnlineResponse, "users": [OnlineUser]} as proto3 JSON' },
    ],
  },
  async (parsed) => {
    const pid = option(parsed, 'pid', true);
    const target = grpcTarget(parsed);
    const client = new OnlineUsersServiceClient(target.address, target.credentials);
    let count: CountOnlineResponse;
    const users: OnlineUser[] = [];
    try {
      count = await unary<CountOnlineResponse>(target.address, (done) =>
        client.countOnline({ pid }, target.metadata, { deadline: deadline() }, done),
      );
      let pageToken = '';
      do {
        const page = await unary<ListOnlineUsersResponse>(target.address, (done) =>
          client.listOnlineUsers({ pid, pageSize: PAGE_SIZE, pageToken }, target.metadata, { deadline: deadline() }, done),
        );
        users.push(...page.users);
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
    } finally {
      client.close();
    }
    if (parsed.has('json')) {
      const list = ListOnlineUsersResponse.toJSON({ users, nextPageToken: '', totalSize: users.length }) as { users?: unknown[] };
      process.stdout.write(`${JSON.stringify({ count: CountOnlineResponse.toJSON(count), users: list.users ?? [] })}\n`);
      return;
    }
    process.stdout.write(`project "${pid}": ${count.users} users online, ${count.connections} connections\n`);
    if (users.length > 0) process.stdout.write(table(['UID', 'CONNECTIONS'], users.map((u) => [u.uid, String(u.connections)])));
  },
);
