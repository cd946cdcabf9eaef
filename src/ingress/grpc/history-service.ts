import type { ChannelHistory } from '../../core/history.js';
import type { HistoryServiceServer } from '../../../gen/pushwire/v1/history.js';
import { historyQuery, historyResponse } from '../history-messages.js';
import { unary, type Deps } from './push-service.js';

export interface HistoryDeps extends Deps {
  history: ChannelHistory;
}

/** pushwire.v1.HistoryService. */
export function historyService(o: HistoryDeps): HistoryServiceServer {
  return {
    getHistory: unary('GetHistory', 'GetHistory', o, async (req, keyPid) => {
      const pid = o.projects.resolvePid(req.pid, keyPid);
      return historyResponse(await o.history.get(pid, req.uid, req.topic, historyQuery(req.since, req.limit, req.reverse)));
    }),
    removeHistory: unary('RemoveHistory', 'RemoveHistory', o, async (req, keyPid) => {
      await o.history.remove(o.projects.resolvePid(req.pid, keyPid), req.uid, req.topic);
      return {};
    }),
  };
}
