import { credentials, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { ClusterServiceClient, type ListNodesResponse } from '../../gen/pushwire/v1/cluster.js';
import {
  OnlineUsersServiceClient,
  type CountOnlineRequest,
  type CountOnlineResponse,
  type GetPresenceRequest,
  type GetPresenceResponse,
  type ListOnlineUsersRequest,
  type ListOnlineUsersResponse,
  type WatchOnlineUsersResponse,
} from '../../gen/pushwire/v1/presence.js';
import { SubscribeServiceClient, type SubscribeRequest, type SubscribeResponse } from '../../gen/pushwire/v1/subscribe.js';

/** gRPC clients for the presence, subscribe and cluster services of one node. */
export class PresenceClients {
  readonly online: InstanceType<typeof OnlineUsersServiceClient>;
  readonly subscriber: InstanceType<typeof SubscribeServiceClient>;
  readonly cluster: InstanceType<typeof ClusterServiceClient>;

  constructor(address: string) {
    this.online = new OnlineUsersServiceClient(address, credentials.createInsecure());
    this.subscriber = new SubscribeServiceClient(address, credentials.createInsecure());
    this.cluster = new ClusterServiceClient(address, credentials.createInsecure());
  }

  close(): void {
    this.online.close();
    this.subscriber.close();
    this.cluster.close();
  }

  list(req: Partial<ListOnlineUsersRequest>, metadata = new Metadata()): Promise<ListOnlineUsersResponse> {
    const full = { pid: '', pageSize: 0, pageToken: '', ...req };
    return new Promise((resolve, reject) => this.online.listOnlineUsers(full, metadata, (err, res) => (err ? reject(err) : resolve(res))));
  }

  get(req: Partial<GetPresenceRequest>, metadata = new Metadata()): Promise<GetPresenceResponse> {
    const full = { pid: '', uids: [], ...req };
    return new Promise((resolve, reject) => this.online.getPresence(full, metadata, (err, res) => (err ? reject(err) : resolve(res))));
  }

  count(req: Partial<CountOnlineRequest> = {}, metadata = new Metadata()): Promise<CountOnlineResponse> {
    const full = { pid: '', ...req };
    return new Promise((resolve, reject) => this.online.countOnline(full, metadata, (err, res) => (err ? reject(err) : resolve(res))));
  }

  nodes(metadata = new Metadata()): Promise<ListNodesResponse> {
    return new Promise((resolve, reject) => this.cluster.listNodes({}, metadata, (err, res) => (err ? reject(err) : resolve(res))));
  }

  /** Subscribe, resolved once the server's headers say every subscription is in place. */
  async subscribe(req: Partial<SubscribeRequest>, metadata = new Metadata()): Promise<Stream<SubscribeResponse>> {
    const s = new Stream(this.subscriber.subscribe({ pid: '', topics: [], uid: '', privateTopics: [], since: {}, privateSince: {}, ...req } as SubscribeRequest, metadata));
    await s.headers;
    return s;
  }

  watch(pid = '', metadata = new Metadata()): Stream<WatchOnlineUsersResponse> {
    return new Stream(this.online.watchOnlineUsers({ pid }, metadata));
  }
}

export const bearer = (key: string): Metadata => {
  const m = new Metadata();
  m.set('authorization', `Bearer ${key}`);
  return m;
};

/** Records a server stream's messages and final status. */
export class Stream<T> {
  readonly items: T[] = [];
  readonly headers: Promise<void>;
  readonly ended: Promise<ServiceError | null>;
  private cursor = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly call: ClientReadableStream<T>) {
    this.headers = new Promise((resolve, reject) => {
      call.once('metadata', () => resolve());
      call.once('error', reject);
    });
    this.headers.catch(() => {});
    call.on('data', (item: T) => {
      this.items.push(item);
      for (const w of this.waiters.splice(0)) w();
    });
    this.ended = new Promise((resolve) => {
      call.on('error', (err: ServiceError) => resolve(err));
      call.on('end', () => resolve(null));
    });
    void this.ended.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Marks every item received so far as read: next() looks only at what arrives from now on. */
  skip(): void {
    this.cursor = this.items.length;
  }

  /** The next unread item matching `match`. */
  async next(match: (item: T) => boolean = () => true, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.items.length) {
        const item = this.items[this.cursor++]!;
        if (match(item)) return item;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching stream item within ${timeoutMs} ms; got ${JSON.stringify(this.items)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  cancel(): void {
    this.call.cancel();
  }
}
