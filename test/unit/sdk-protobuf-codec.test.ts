// The SDK's hand-written protobuf codec (client/src/protobuf.ts, no runtime dependency) checked
// against the code generated from proto/pushwire/v1/client.proto: what the SDK encodes decodes as the
// intended ClientFrame, and every ServerMessage kind the generated encoder writes decodes as intended.
import { describe, expect, it } from 'vitest';
import { ClientFrame, ServerFrame, type ServerMessage } from '../../gen/pushwire/v1/client.js';
import type { Command, Method } from '../../client/src/codec.js';
import { protobufCodec } from '../../client/src/protobuf.js';

const frame = (...messages: Array<Partial<ServerMessage>>): Uint8Array =>
  ServerFrame.encode(ServerFrame.fromPartial({ messages: messages as ServerMessage[] })).finish();

const noMethods = (): Method | undefined => undefined;

describe('SDK protobuf codec vs generated code', () => {
  it('encodes every command as the generated ClientFrame decodes it', () => {
    const commands: Command[] = [
      { id: 1, method: 'connect', token: 'tok', name: 'pushwire-js', version: '0.1.0' },
      { id: 2, method: 'subscribe', channel: 'chat:1', private: true, since: { offset: 2 ** 40 + 3, epoch: 'ep' } },
      { id: 3, method: 'unsubscribe', channel: 'chat:1' },
      { id: 4, method: 'request', route: 'orders.create', data: { item: 'böök' } },
      { id: 5, method: 'history', channel: 'c', since: { offset: 7, epoch: 'e' }, limit: 10, reverse: true },
      { id: 6, method: 'presence', channel: 'p', private: true },
      { id: 300, method: 'ping' },
    ];
    const decoded = ClientFrame.decode(protobufCodec.encode(commands) as Uint8Array);
    expect(ClientFrame.toJSON(decoded)).toEqual({
      commands: [
        { id: 1, connect: { token: 'tok', name: 'pushwire-js', version: '0.1.0' } },
        { id: 2, subscribe: { channel: 'chat:1', private: true, since: { offset: String(2 ** 40 + 3), epoch: 'ep' } } },
        { id: 3, unsubscribe: { channel: 'chat:1' } },
        { id: 4, request: { route: 'orders.create', data: Buffer.from(JSON.stringify({ item: 'böök' })).toString('base64') } },
        { id: 5, history: { channel: 'c', since: { offset: '7', epoch: 'e' }, limit: 10, reverse: true } },
        { id: 6, presence: { channel: 'p', private: true } },
        { id: 300, ping: {} },
      ],
    });
    // The pong carries no id and an empty (but present) PongCommand.
    expect(ClientFrame.decode(protobufCodec.pong() as Uint8Array).commands).toEqual([expect.objectContaining({ id: 0, pong: {} })]);
  });

  it('decodes every reply kind, using the result field the server set', () => {
    const pub = { channel: 'c', data: Buffer.from('{"a":1}'), offset: '9007199254740991', epoch: 'e', id: 'm1', time: '1763900000000', tags: ['t'] };
    const out = protobufCodec.decode(
      frame(
        { id: 1, connect: { client: 'n1-b-1', user: 'alice', node: 'n1', ping: 25, pong: 8 } },
        { id: 2, subscribe: { positioned: true, recoverable: true, epoch: 'e', offset: '12', wasRecovering: true, recovered: true, publications: [pub as never] } },
        { id: 3, unsubscribe: {} },
        { id: 4, request: {} },
        { id: 5, history: { publications: [pub as never], epoch: 'e', offset: '12' } },
        { id: 6, presence: { clients: [{ client: 'c1', user: 'u1' }] } },
        { id: 7, pong: {} },
        { id: 8, error: { code: 30010, message: 'insufficient state', detail: 'since is not in this stream' } },
      ),
      noMethods,
    );
    const p = { channel: 'c', data: { a: 1 }, offset: 9007199254740991, epoch: 'e', id: 'm1', time: 1763900000000, tags: ['t'] };
    expect(out).toEqual([
      { type: 'reply', id: 1, result: { client: 'n1-b-1', user: 'alice', node: 'n1', ping: 25, pong: 8 } },
      { type: 'reply', id: 2, result: { positioned: true, recoverable: true, epoch: 'e', offset: 12, wasRecovering: true, recovered: true, publications: [p] } },
      { type: 'reply', id: 3, result: undefined },
      { type: 'reply', id: 4, result: undefined },
      { type: 'reply', id: 5, result: { publications: [p], epoch: 'e', offset: 12 } },
      { type: 'reply', id: 6, result: { clients: [{ client: 'c1', user: 'u1' }] } },
      { type: 'reply', id: 7, result: undefined },
      { type: 'reply', id: 8, error: { code: 30010, message: 'insufficient state', detail: 'since is not in this stream' } },
    ]);
  });

  it('an empty result message on the wire still resolves by the command it answers', () => {
    // proto3 writers may drop an all-default submessage's content but keep the field; a reply of
    // only an id (no result field at all) falls back to the pending command's method.
    const [m] = protobufCodec.decode(frame({ id: 9 }), () => 'subscribe');
    expect(m).toEqual({ type: 'reply', id: 9, result: { positioned: false, recoverable: false, epoch: '', offset: 0, wasRecovering: false, recovered: false, publications: [] } });
  });

  it('decodes every push kind, with payloads presented as in JSON mode', () => {
    const out = protobufCodec.decode(
      frame(
        { pub: { channel: '', private: true, data: Buffer.from('plain'), offset: '0', epoch: '', id: 'm', time: '0', tags: [] } },
        { pub: { channel: 'b', private: false, data: Buffer.from([0xff, 0]), offset: '0', epoch: '', id: '', time: '0', tags: [] } },
        { pub: { channel: 'e', private: false, data: Buffer.alloc(0), offset: '0', epoch: '', id: '', time: '0', tags: [] } },
        { unsubscribed: { channel: 'c', private: false, code: 30010, reason: 'insufficient state', resubscribe: true } },
        { disconnect: { code: 1012, reason: 'service restart', reconnect: true } },
        { reply: { id: 5, data: Buffer.from('{"order":7}') } },
        { ping: {} },
        { join: { channel: 'c', private: false, info: { client: 'c2', user: 'u2' } } },
        { leave: { channel: 'c', private: false, info: { client: 'c2', user: '' } } },
      ),
      noMethods,
    );
    expect(out).toEqual([
      { type: 'publication', pub: { channel: '', private: true, data: 'plain', id: 'm' } },
      { type: 'publication', pub: { channel: 'b', data: new Uint8Array([0xff, 0]) } },
      { type: 'publication', pub: { channel: 'e', data: null } },
      { type: 'unsubscribed', channel: 'c', private: false, code: 30010, reason: 'insufficient state', resubscribe: true },
      { type: 'disconnect', code: 1012, reason: 'service restart', reconnect: true },
      { type: 'request-reply', id: 5, data: { order: 7 } },
      { type: 'ping' },
      { type: 'join', channel: 'c', private: false, info: { client: 'c2', user: 'u2' } },
      { type: 'leave', channel: 'c', private: false, info: { client: 'c2', user: '' } },
    ]);
  });

  it('refuses text frames and truncated frames with an error (the client then reconnects)', () => {
    expect(() => protobufCodec.decode('{"ping":{}}', noMethods)).toThrow('text frame on pushwire.v1.proto');
    const bytes = frame({ disconnect: { code: 1012, reason: 'service restart', reconnect: true } });
    expect(() => protobufCodec.decode(bytes.subarray(0, bytes.length - 3), noMethods)).toThrow(/truncated/);
  });
});
