import express, { type Express } from 'express';
import { Code } from '../../core/errors.js';
import { GetHistoryResponse } from '../../../gen/pushwire/v1/history.js';
import { historyQuery, historyResponse } from '../history-messages.js';
import type { HttpAppOptions } from './options.js';
import { authorize, jsonBody, send } from './route-helpers.js';
import { decodeProtoJson, type FieldSpec } from './proto-json.js';

const CHANNEL: readonly FieldSpec[] = [
  { name: 'pid', kind: 'string' },
  { name: 'topic', kind: 'string' },
  { name: 'uid', kind: 'string' },
];

const GET_HISTORY: readonly FieldSpec[] = [
  ...CHANNEL,
  { name: 'since', kind: 'message', of: { typeName: 'pushwire.v1.StreamPosition', fields: [{ name: 'offset', kind: 'uint64' }, { name: 'epoch', kind: 'string' }] } },
  { name: 'limit', kind: 'uint32' },
  { name: 'reverse', kind: 'bool' },
];

/**
 * REST bridge for HistoryService, grpc-gateway style: `POST /v1/projects/{pid}/history` and
 * `.../history:remove` with proto3 JSON bodies (the path's pid wins over one in the body).
 */
export function historyRoutes(app: Express, o: HttpAppOptions): void {
  const body = express.raw({ type: () => true, limit: 64 * 1024 });
  const pidOf = (pathPid: string, keyPid: string | undefined): string => o.projects.resolvePid(pathPid, keyPid);

  app.post('/v1/projects/:pid/history', authorize(o.projects, 'GetHistory'), body, async (req, res) => {
    const f = decodeProtoJson(jsonBody(req), 'pushwire.v1.GetHistoryRequest', GET_HISTORY);
    const pid = pidOf(String(req.params.pid), res.locals.keyPid as string | undefined);
    const since = f.since as { offset?: string; epoch?: string } | undefined;
    const q = historyQuery(since === undefined ? undefined : { offset: since.offset ?? '0', epoch: since.epoch ?? '' }, (f.limit as number | undefined) ?? 0, (f.reverse as boolean | undefined) ?? false);
    const page = await o.node.history.get(pid, (f.uid as string | undefined) ?? '', (f.topic as string | undefined) ?? '', q);
    res.json(GetHistoryResponse.toJSON(historyResponse(page)));
  });

  app.post('/v1/projects/:pid/history\\:remove', authorize(o.projects, 'RemoveHistory'), body, async (req, res) => {
    const f = decodeProtoJson(jsonBody(req), 'pushwire.v1.RemoveHistoryRequest', CHANNEL);
    const pid = pidOf(String(req.params.pid), res.locals.keyPid as string | undefined);
    await o.node.history.remove(pid, (f.uid as string | undefined) ?? '', (f.topic as string | undefined) ?? '');
    res.json({});
  });

  app.all('/v1/projects/:pid/history', (_req, res) => send(res, Code.UNIMPLEMENTED, 'Method Not Allowed'));
}
