import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { PushDataRequest, PushDataResponse, PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { UsageError, option } from './args.js';
import { OperationError, defineCommand } from './command.js';
import { DEFAULT_GRPC, deadline, grpcTarget, unary } from './grpc-target.js';

/** `pushwire push`: one PushService.PushData call, over gRPC (default) or the REST bridge. */
export const push = defineCommand(
  'push',
  {
    usage:
      'pushwire push (--topic TOPIC [--uid UID] | --uid UID | --cid CID | --broadcast) [--reply-to ID] [--pid PID]\n' +
      '                     [--data TEXT | --file FILE] [--grpc HOST:PORT | --http URL] [--key KEY]',
    description:
      'Sends one PushData request and prints the response (message_id, node_id) as proto3 JSON.\n' +
      'The target is as in PushDataRequest: --topic alone is a public topic (code 1 subscribers),\n' +
      '--topic with --uid that user\'s private topic (code 5), --uid alone every connection of the\n' +
      'user, --cid those connections (comma-separated ids), --broadcast every connection of the project.\n' +
      '--reply-to answers a client request (code 7) with that id: the client gets a 20006 reply frame.',
    flags: [
      { name: 'topic', value: 'TOPIC', help: 'the topic' },
      { name: 'uid', value: 'UID', help: 'the user' },
      { name: 'cid', value: 'CID', help: 'connection ids, comma-separated (a targeted push)' },
      { name: 'broadcast', help: 'no topic and no uid: every connection of the project' },
      { name: 'reply-to', value: 'ID', help: "the client request this push answers (with --cid, the requester's cid)" },
      { name: 'pid', value: 'PID', help: 'the project (default: the API key\'s, or "default")' },
      { name: 'data', value: 'TEXT', help: 'the payload, as UTF-8 text' },
      { name: 'file', value: 'FILE', help: 'the payload, read from a file ("-" for stdin), bytes as they are' },
      { name: 'grpc', value: 'HOST:PORT', help: `the node's gRPC address (default ${DEFAULT_GRPC})` },
      { name: 'http', value: 'URL', help: "push through the REST bridge at this base URL instead (the node's HTTP port)" },
      { name: 'key', value: 'KEY', help: 'API key (Bearer); needed when the node has API keys' },
    ],
  },
  async (parsed) => {
    const topic = option(parsed, 'topic') ?? '';
    const uid = option(parsed, 'uid') ?? '';
    const cids = (option(parsed, 'cid') ?? '').split(',').filter((c) => c !== '');
    if (parsed.has('broadcast') !== (topic === '' && uid === '' && cids.length === 0)) {
      throw new UsageError(parsed.has('broadcast') ? '--broadcast takes no --topic, --uid or --cid' : 'give --topic, --uid, --cid or --broadcast');
    }
    const text = option(parsed, 'data');
    const file = option(parsed, 'file');
    if (text !== undefined && file !== undefined) throw new UsageError('give at most one of --data and --file');
    const http = option(parsed, 'http');
    if (http !== undefined && parsed.has('grpc')) throw new UsageError('give at most one of --grpc and --http');
    const data = file !== undefined ? readPayload(file) : Buffer.from(text ?? '', 'utf8');
    const req = PushDataRequest.fromPartial({ topic, uid, cids, replyTo: option(parsed, 'reply-to') ?? '', pid: option(parsed, 'pid') ?? '', data });
    const key = option(parsed, 'key');
    const res = http !== undefined ? await pushHttp(http, req, key) : await pushGrpc(parsed, req);
    process.stdout.write(`${JSON.stringify(res)}\n`);
  },
);

function readPayload(file: string): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw new UsageError(`--file: cannot read "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function pushGrpc(parsed: Map<string, string | true>, req: PushDataRequest): Promise<unknown> {
  if (!parsed.has('grpc')) parsed.set('grpc', DEFAULT_GRPC);
  const target = grpcTarget(parsed);
  const client = new PushServiceClient(target.address, target.credentials);
  try {
    const res = await unary<PushDataResponse>(target.address, (done) => client.pushData(req, target.metadata, { deadline: deadline() }, done));
    return PushDataResponse.toJSON(res);
  } finally {
    client.close();
  }
}

async function pushHttp(base: string, req: PushDataRequest, key: string | undefined): Promise<unknown> {
  if (!URL.canParse(base)) throw new UsageError(`--http must be a URL such as http://127.0.0.1:8912, got "${base}"`);
  const url = new URL('/v1/pushData', base);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
      body: JSON.stringify(PushDataRequest.toJSON(req)),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    // undici hides the socket error in `cause` (an AggregateError when several addresses were tried).
    const cause = (err as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
    const code = cause?.code ?? cause?.errors?.[0]?.code;
    const text = code === 'ECONNREFUSED' ? 'connection refused (is a node listening there? see --http)' : (code ?? (err as Error).message);
    throw new OperationError(`${url.origin}: ${text}`);
  }
  const body = (await res.json().catch(() => undefined)) as { code?: number; message?: string } | undefined;
  if (!res.ok) {
    const name = typeof body?.code === 'number' ? (status[body.code] ?? String(body.code)) : 'error';
    throw new OperationError(`${url.origin}: HTTP ${res.status} ${name}: ${body?.message ?? res.statusText}`);
  }
  return body;
}
