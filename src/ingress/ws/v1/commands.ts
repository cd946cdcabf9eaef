import type { Position } from '../../../cluster/bus.js';
import { topicProblem } from '../../../core/names.js';
import type { Command } from '../../../../gen/pushwire/v1/client.js';

/** A protocol v1 command after validation: what the connection runs. */
export type V1Command =
  | { kind: 'connect'; id: number; token: string; name: string; version: string }
  | { kind: 'subscribe'; id: number; channel: string; private: boolean; since?: Position }
  | { kind: 'unsubscribe'; id: number; channel: string; private: boolean }
  | { kind: 'request'; id: number; route: string; data: Buffer }
  | { kind: 'history'; id: number; channel: string; private: boolean; since?: Position; limit: number; reverse: boolean }
  | { kind: 'presence'; id: number; channel: string; private: boolean }
  | { kind: 'ping'; id: number }
  | { kind: 'pong' }
  /** Not understood: answered 30001 with `detail`, echoing `id` when it was valid. */
  | { kind: 'bad'; id: number; detail: string };

export const COMMAND_FIELDS = ['connect', 'subscribe', 'unsubscribe', 'request', 'history', 'presence', 'ping', 'pong'] as const;
type CommandField = (typeof COMMAND_FIELDS)[number];

const MAX_ID = 0xffffffff;

/** Raised inside validation; becomes a `bad` command. */
class Bad extends Error {}

const fail = (detail: string): never => {
  throw new Bad(detail);
};

/**
 * Validates a decoded command, from JSON (`json` true: plain values, checked for type) or
 * from protobuf (typed by the decoder). Channel names follow the legacy topic rules.
 */
export function validateCommand(raw: unknown, json: boolean): V1Command {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { kind: 'bad', id: 0, detail: 'bad data format: not a JSON object' };
  const o = raw as Record<string, unknown>;
  let id = 0;
  if (o.id !== undefined && o.id !== null) {
    if (typeof o.id !== 'number' || !Number.isInteger(o.id) || o.id < 0 || o.id > MAX_ID) {
      return { kind: 'bad', id: 0, detail: `id must be an integer from 1 to ${MAX_ID}` };
    }
    id = o.id;
  }
  const present = COMMAND_FIELDS.filter((f) => o[f] !== undefined && o[f] !== null);
  if (present.length === 0) return { kind: 'bad', id, detail: 'unknown command' };
  if (present.length > 1) return { kind: 'bad', id, detail: 'a command has exactly one command field' };
  const field = present[0]!;
  if (field !== 'pong' && id === 0) return { kind: 'bad', id, detail: 'a command needs a non-zero id' };
  const body = o[field];
  if (typeof body !== 'object' || Array.isArray(body)) return { kind: 'bad', id, detail: `${field} must be an object` };
  try {
    return build(field, id, body as Record<string, unknown>, json);
  } catch (err) {
    if (err instanceof Bad) return { kind: 'bad', id, detail: err.message };
    throw err;
  }
}

function build(field: CommandField, id: number, b: Record<string, unknown>, json: boolean): V1Command {
  const str = (name: string): string => {
    const v = b[name];
    if (v === undefined || v === null) return '';
    return typeof v === 'string' ? v : fail(`${field}.${name} must be a string`);
  };
  const bool = (name: string): boolean => {
    const v = b[name];
    if (v === undefined || v === null) return false;
    return typeof v === 'boolean' ? v : fail(`${field}.${name} must be a boolean`);
  };
  switch (field) {
    case 'connect':
      return { kind: 'connect', id, token: str('token'), name: str('name'), version: str('version') };
    case 'subscribe': {
      const c = channel(field, str('channel'), bool('private'));
      const since = position(b.since, json);
      return since === undefined ? { kind: 'subscribe', id, ...c } : { kind: 'subscribe', id, ...c, since };
    }
    case 'unsubscribe':
      return { kind: 'unsubscribe', id, ...channel(field, str('channel'), bool('private')) };
    case 'presence':
      return { kind: 'presence', id, ...channel(field, str('channel'), bool('private')) };
    case 'history': {
      const c = channel(field, str('channel'), bool('private'));
      const limit = b.limit ?? 0;
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > MAX_ID) fail('history.limit must be a non-negative integer');
      const since = position(b.since, json);
      const cmd: V1Command = { kind: 'history', id, ...c, limit: limit as number, reverse: bool('reverse') };
      if (since !== undefined) cmd.since = since;
      return cmd;
    }
    case 'request': {
      const route = str('route');
      if (route !== '') {
        const why = topicProblem(route);
        if (why) fail(`request.route: ${why.replace(/^topic /, '')}`);
      }
      let data: Buffer;
      if (json) data = b.data === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(b.data));
      else data = Buffer.from((b.data as Uint8Array | undefined) ?? new Uint8Array(0));
      return { kind: 'request', id, route, data };
    }
    case 'ping':
      return { kind: 'ping', id };
    case 'pong':
      return { kind: 'pong' };
  }
}

function channel(field: string, name: string, priv: boolean): { channel: string; private: boolean } {
  if (name === '') {
    // private with no channel: the user's own channel.
    if (!priv) fail('channel must not be empty');
    return { channel: '', private: true };
  }
  const why = topicProblem(name);
  if (why) fail(why.replace(/^topic/, 'channel'));
  void field;
  return { channel: name, private: priv };
}

function position(raw: unknown, json: boolean): Position | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) return fail('since must be an object {offset, epoch}');
  const s = raw as Record<string, unknown>;
  // protobuf: uint64 decoded as a decimal string (forceLong=string); JSON: a number.
  const offset = s.offset === undefined || s.offset === null ? 0 : json ? s.offset : Number(s.offset);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail('since.offset must be a non-negative integer');
  const epoch = s.epoch ?? '';
  if (typeof epoch !== 'string') fail('since.epoch must be a string');
  return { offset: offset as number, epoch: epoch as string };
}

/** A protobuf-decoded Command as the plain object validateCommand takes (oneof fields as set). */
export function protoCommand(c: Command): Record<string, unknown> {
  return c as unknown as Record<string, unknown>;
}
