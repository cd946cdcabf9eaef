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

/**
 * textFrame in one allocation: the header, then the text encoded in place (no Buffer of the text
 * to copy after the header: a recovery reply is 100 KB and more).
 */
export function textFrameOf(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + length);
  out[0] = 0x81; // FIN, text
  if (head === 2) out[1] = length;
  else if (head === 4) {
    out[1] = 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    out.writeUInt32BE(length >>> 0, 6);
  }
  out.write(text, head);
  return out;
}

export const PONG_FRAME = textFrame('pong');
