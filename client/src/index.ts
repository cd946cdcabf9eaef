export { Client, SDK_VERSION } from './client.js';
export type {
  ClientEvents,
  ClientOptions,
  ClientState,
  ConnectedEvent,
  ConnectingEvent,
  DisconnectedEvent,
  ErrorEvent,
  History,
  HistoryOptions,
  Publication,
  RequestOptions,
  ServerPublication,
  StateEvent,
} from './client.js';
export { Subscription } from './subscription.js';
export type { SubscribedEvent, SubscriptionEvents, SubscriptionOptions, SubscriptionState } from './subscription.js';
export { ErrorCode, PushwireError } from './errors.js';
export { ReasonCode, ServerCode } from './codes.js';
export { jsonCodec } from './json-codec.js';
export type { ClientInfo, Codec, StreamPosition } from './codec.js';
export type { WebSocketConstructor, WebSocketLike } from './transport.js';
