/**
 * The SDK's own model of protocol v1 frames. The client and subscriptions speak only these types;
 * a Codec maps them to and from one wire format (JSON text frames or protobuf binary frames), so the
 * state machines do not change with the encoding and the protobuf code stays out of the JSON bundle.
 */

/** A position in a channel's stream: `offset` counts publications within `epoch`. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** A publication as the codec decodes it; `data` is still the wire value (JSON value or bytes). */
export interface RawPublication {
  /** Empty for pushes to the user, broadcasts and targeted pushes. */
  channel: string;
  private?: boolean;
  data: unknown;
  offset?: number;
  epoch?: string;
  id?: string;
  time?: number;
  tags?: string[];
}

export interface ClientInfo {
  client: string;
  user?: string;
}

export type Command =
  | { id: number; method: 'connect'; token?: string; name?: string; version?: string }
  | { id: number; method: 'subscribe'; channel: string; private?: boolean; since?: StreamPosition }
  | { id: number; method: 'unsubscribe'; channel: string; private?: boolean }
  | { id: number; method: 'request'; data: unknown; route?: string }
  | { id: number; method: 'history'; channel: string; private?: boolean; since?: StreamPosition; limit?: number; reverse?: boolean }
  | { id: number; method: 'presence'; channel: string; private?: boolean }
  | { id: number; method: 'ping' };

export type Method = Command['method'];

export interface ServerError {
  code: number;
  message: string;
  detail?: string;
}

export interface ConnectResult {
  client: string;
  user?: string;
  node?: string;
  /** Seconds between the server's pings (0: the server does not ping). */
  ping?: number;
  /** Seconds the server waits for an answer to a ping. */
  pong?: number;
}

export interface SubscribeResult {
  /** The channel keeps history: publications carry offset and epoch. */
  positioned?: boolean;
  /** The channel allows recovery. */
  recoverable?: boolean;
  offset?: number;
  epoch?: string;
  wasRecovering?: boolean;
  recovered?: boolean;
  publications?: RawPublication[];
}

export interface HistoryResult {
  publications: RawPublication[];
  offset: number;
  epoch: string;
}

export interface PresenceResult {
  clients: ClientInfo[];
}

export type Result = ConnectResult | SubscribeResult | HistoryResult | PresenceResult | undefined;

export type ServerMessage =
  | { type: 'reply'; id: number; error?: ServerError; result?: Result }
  | { type: 'publication'; pub: RawPublication }
  /** The server's keepalive: answered with a pong, and proof the connection is alive. */
  | { type: 'ping' }
  /** Sent before the server closes: whether to come back. */
  | { type: 'disconnect'; code: number; reason: string; reconnect: boolean }
  /** The server ended a subscription; with `resubscribe` (e.g. 30010, a gap) subscribe again from the last position. */
  | { type: 'unsubscribed'; channel: string; private?: boolean; code: number; reason: string; resubscribe: boolean }
  /** A backend's answer to a request command, after its accepting reply. */
  | { type: 'request-reply'; id: number; data: unknown }
  | { type: 'join' | 'leave'; channel: string; private?: boolean; info: ClientInfo };

export interface Codec {
  /** The WebSocket subprotocol that selects this encoding. */
  readonly subprotocol: string;
  /** Binary frames (protobuf) or text frames (JSON). */
  readonly binary: boolean;
  /** Encodes commands (several may share one frame) into one frame. */
  encode(commands: readonly Command[]): string | Uint8Array;
  /** The frame that answers a server ping. */
  pong(): string | Uint8Array;
  /** Decodes one frame. `methodOf` tells which command a reply id answers (for typed results). Throws on a bad frame. */
  decode(frame: string | Uint8Array, methodOf: (id: number) => Method | undefined): ServerMessage[];
}
