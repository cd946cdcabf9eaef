import { describe, expect, it } from 'vitest';
import { deliveryFrame, frame, PONG_FRAME, textFrame, textFrameOf } from '../../src/ingress/ws/frames.js';

interface Parsed {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  headerLength: number;
  payload: Buffer;
}

/** A minimal RFC 6455 frame parser for one server (unmasked) frame. */
function parseFrame(buf: Buffer): Parsed {
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  let len = b1 & 0x7f;
  let o = 2;
  if (len === 126) {
    len = buf.readUInt16BE(2);
    o = 4;
  } else if (len === 127) {
    len = Number(buf.readBigUInt64BE(2));
    o = 10;
  }
  expect(buf.length).toBe(o + len);
  return {
    fin: (b0 & 0x80) !== 0,
    rsv: (b0 >> 4) & 0x07,
    opcode: b0 & 0x0f,
    masked: (b1 & 0x80) !== 0,
    headerLength: o,
    payload: buf.subarray(o),
  };
}

describe('deliveryFrame', () => {
  it('valid UTF-8 -> a final text frame (0x81), unmasked, payload untouched', () => {
    const data = Buffer.from('hello, wörld 😀');
    const f = deliveryFrame(data);
    expect(f[0]).toBe(0x81);
    const p = parseFrame(f);
    expect(p).toMatchObject({ fin: true, rsv: 0, opcode: 1, masked: false, headerLength: 2 });
    expect(p.payload.equals(data)).toBe(true);
    expect(data.toString()).toBe('hello, wörld 😀');
  });

  it('invalid UTF-8 -> a final binary frame (0x82)', () => {
    for (const data of [
      Buffer.from([0xff, 0xfe, 0x00]),
      Buffer.from([0x80]), // lone continuation byte
      Buffer.from([0xc0, 0xaf]), // overlong
      Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate
      Buffer.from([0x68, 0x69, 0xe2, 0x82]), // truncated sequence
    ]) {
      const f = deliveryFrame(data);
      expect(f[0]).toBe(0x82);
      const p = parseFrame(f);
      expect(p.masked).toBe(false);
      expect(p.payload.equals(data)).toBe(true);
    }
  });

  it('an empty payload is an empty text frame', () => {
    expect(deliveryFrame(Buffer.alloc(0))).toEqual(Buffer.from([0x81, 0x00]));
  });

  it('uses 2, 4 and 10 byte headers for 125, 126 and 65536 byte payloads', () => {
    const cases: [number, number, number][] = [
      [125, 2, 125],
      [126, 4, 126],
      [65535, 4, 126],
      [65536, 10, 127],
    ];
    for (const [size, header, lenByte] of cases) {
      const text = Buffer.alloc(size, 'a');
      const f = deliveryFrame(text);
      expect(f.length, `text ${size}`).toBe(header + size);
      expect(f[0]).toBe(0x81);
      expect(f[1]).toBe(lenByte); // mask bit clear
      const p = parseFrame(f);
      expect(p.headerLength).toBe(header);
      expect(p.payload.equals(text)).toBe(true);

      const bin = Buffer.alloc(size, 0xff);
      const g = deliveryFrame(bin);
      expect(g.length, `binary ${size}`).toBe(header + size);
      expect(g[0]).toBe(0x82);
      expect(g[1]).toBe(lenByte);
      expect(parseFrame(g).payload.equals(bin)).toBe(true);
    }
  });

  it('the extended length fields hold the exact payload length', () => {
    expect(deliveryFrame(Buffer.alloc(126, 'a')).readUInt16BE(2)).toBe(126);
    expect(deliveryFrame(Buffer.alloc(65535, 'a')).readUInt16BE(2)).toBe(65535);
    expect(deliveryFrame(Buffer.alloc(65536, 'a')).readBigUInt64BE(2)).toBe(65536n);
  });

  it('returns a single buffer that can be written to many sockets (same bytes each call)', () => {
    const data = Buffer.from('x'.repeat(300));
    const a = deliveryFrame(data);
    const b = deliveryFrame(data);
    expect(Buffer.isBuffer(a)).toBe(true);
    expect(a.equals(b)).toBe(true);
  });
});

describe('frame / textFrame / PONG_FRAME', () => {
  it('frame() honours the binary flag regardless of content', () => {
    expect(frame(Buffer.from('abc'), true)[0]).toBe(0x82);
    expect(frame(Buffer.from('abc'), false)[0]).toBe(0x81);
  });

  it('textFrame encodes a string as UTF-8 text', () => {
    const f = textFrame('{"code":20001}');
    expect(parseFrame(f)).toMatchObject({ opcode: 1, masked: false });
    expect(parseFrame(f).payload.toString()).toBe('{"code":20001}');
  });

  it('PONG_FRAME is the text "pong"', () => {
    expect(PONG_FRAME).toEqual(Buffer.from([0x81, 0x04, 0x70, 0x6f, 0x6e, 0x67]));
  });
});

describe('textFrameOf', () => {
  it('writes the same bytes as frame(Buffer.from(text)) at every header size, multi-byte text included', () => {
    for (const n of [0, 1, 62, 63, 125, 126, 127, 32_767, 65_535, 65_536, 70_001]) {
      for (const unit of ['a', 'é', '😀']) {
        const text = unit.repeat(Math.ceil(n / Buffer.byteLength(unit)));
        expect(textFrameOf(text).equals(frame(Buffer.from(text), false))).toBe(true);
      }
    }
  });
});
