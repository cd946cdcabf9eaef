import { status, type ServiceError } from '@grpc/grpc-js';
import { BackendServiceClient, ClientEvent } from '../../gen/pushwire/v1/backend.js';
import { option } from './args.js';
import { defineCommand } from './command.js';
import { GRPC_FLAGS, callFailed, grpcTarget } from './grpc-target.js';

/**
 * `pushwire consume`: a backend consumer on BackendService.Connect. Each client event (request,
 * connect, disconnect) is one proto3 JSON line on stdout; the consumer stays registered until
 * Ctrl-C (exit 0) or the node ends the stream (exit 1, with the status).
 */
export const consume = defineCommand(
  'consume',
  {
    usage: 'pushwire consume --pid PID [--group GROUP] [--grpc HOST:PORT] [--key KEY]',
    description:
      'Registers as a consumer of (project, group) and prints every client event as a proto3 JSON line\n' +
      '(data is base64). Runs until Ctrl-C. Status lines go to stderr, events to stdout.',
    flags: [
      { name: 'pid', value: 'PID', help: 'the project whose events to receive' },
      { name: 'group', value: 'GROUP', help: 'consumer group: each event goes to one consumer of each group', default: 'default' },
      ...GRPC_FLAGS,
    ],
  },
  async (parsed) => {
    const pid = option(parsed, 'pid', true);
    const group = option(parsed, 'group', true);
    const target = grpcTarget(parsed);
    const client = new BackendServiceClient(target.address, target.credentials);
    const stream = client.connect({ pid, group }, target.metadata);
    let stopping = false;
    const stop = (): void => {
      stopping = true;
      stream.cancel();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await new Promise<void>((resolve, reject) => {
      // The node sends its headers once the consumer is registered.
      stream.once('metadata', () => {
        process.stderr.write(`pushwire: consuming events of project "${pid}", group "${group}" from ${target.address} (Ctrl-C to stop)\n`);
      });
      stream.on('data', (event: ClientEvent) => {
        process.stdout.write(`${JSON.stringify(ClientEvent.toJSON(event))}\n`);
      });
      stream.on('error', (err: ServiceError) => {
        if (stopping && err.code === status.CANCELLED) resolve();
        else reject(callFailed(target.address, err));
      });
      stream.on('end', () => resolve());
    }).finally(() => client.close());
  },
);
