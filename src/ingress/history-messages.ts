import type { HistoryPage, HistoryQuery } from '../core/history.js';
import type { StreamPosition } from '../../gen/pushwire/v1/client.js';
import type { GetHistoryResponse } from '../../gen/pushwire/v1/history.js';

/** HistoryService's wire shapes from the core's, shared by gRPC and the REST bridge. */

export function historyQuery(since: StreamPosition | undefined, limit: number, reverse: boolean): HistoryQuery {
  const q: HistoryQuery = { limit, reverse };
  if (since !== undefined) q.since = { offset: Number(since.offset), epoch: since.epoch };
  return q;
}

export function historyResponse(page: HistoryPage): GetHistoryResponse {
  return {
    publications: page.publications.map((m) => ({
      offset: String(m.offset ?? 0),
      data: m.data,
      messageId: m.id,
      timeMs: String(Math.round(m.publishedAt)),
    })),
    epoch: page.epoch,
    offset: String(page.offset),
  };
}
