import { invalidArgument } from './errors.js';
import type { Hub } from './hub.js';
import { topicProblem, uidProblem } from './names.js';
import { Session, type Sink } from './session.js';

/** Most topics (and private topics) one service subscription may hold. */
export const MAX_SUBSCRIPTION_TOPICS = 1000;

export interface SubscriptionRequest {
  topics: readonly string[];
  /** Empty: no identity (public topics and broadcasts only). */
  uid: string;
  privateTopics: readonly string[];
}

/** Throws INVALID_ARGUMENT naming the first bad field. */
export function checkSubscription(req: SubscriptionRequest): void {
  if (req.uid !== '') {
    const why = uidProblem(req.uid);
    if (why) throw invalidArgument(why);
  } else if (req.privateTopics.length > 0) {
    throw invalidArgument('private_topics needs uid');
  }
  for (const [field, list] of [
    ['topics', req.topics],
    ['private_topics', req.privateTopics],
  ] as const) {
    if (list.length > MAX_SUBSCRIPTION_TOPICS) throw invalidArgument(`${field} holds at most ${MAX_SUBSCRIPTION_TOPICS} entries`);
    list.forEach((t, i) => {
      const why = topicProblem(t);
      if (why) throw invalidArgument(`${field}[${i}]: ${why}`);
    });
  }
}

/**
 * A backend's subscription (gRPC Subscribe): a `service` session that joins the hub exactly as
 * a WebSocket client on the same topics (logged in as `uid`, subscribed privately to
 * `privateTopics`) would, so it receives the same pushes from every node. Resolves once every
 * channel is subscribed on the bus. The caller removes the session (`hub.remove`) when done,
 * which releases every channel.
 */
export async function openSubscription(hub: Hub, cid: string, pid: string, req: SubscriptionRequest, sink: Sink): Promise<Session> {
  checkSubscription(req);
  const session = new Session(cid, pid, sink, 'service');
  try {
    const joined: Promise<void>[] = [hub.add(session)];
    if (req.uid !== '') {
      joined.push(hub.login(session, req.uid));
      for (const t of req.privateTopics) joined.push(hub.subscribePrivate(session, req.uid, t));
    }
    for (const t of req.topics) joined.push(hub.subscribe(session, t));
    await Promise.all(joined);
  } catch (err) {
    hub.remove(session);
    throw err;
  }
  return session;
}
