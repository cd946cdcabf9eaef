import { isUtf8 } from 'node:buffer';
import * as ws from 'ws';

// ws ships Sender.frame (frame once, write anywhere) but @types/ws does not declare it.
interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
const Sender = (ws as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;

/** One unmasked, final server frame as a single buffer, ready to write to any socket. */
export function frame(payload: Buffer, binary: boolean): Buffer {
  const parts = Sender.frame(payload, {
    fin: true,
    opcode: binary ? 2 : 1,
    mask: false,
    readOnly: true,
    rsv1: false,
  });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Pushed bytes go out raw: a text frame when they are valid UTF-8, else binary (gpush-compatible). */
export const deliveryFrame = (data: Buffer): Buffer => frame(data, !isUtf8(data));

export const textFrame = (text: string): Buffer => frame(Buffer.from(text), false);

export const PONG_FRAME = textFrame('pong');
