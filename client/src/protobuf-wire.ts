/**
 * The protobuf wire format, only as much as pushwire.v1's client frames need (varints, length-delimited
 * fields). Hand-written so the SDK has no runtime dependency; field numbers follow
 * proto/pushwire/v1/client.proto, and test/integration/sdk-protobuf.test.ts checks them against the
 * generated code and a real node.
 */

export class Writer {
  private bytes: number[] = [];

  varint(field: number, value: number): this {
    if (!value) return this; // proto3 omits defaults
    this.tag(field, 0);
    this.rawVarint(value);
    return this;
  }

  bool(field: number, value: boolean | undefined): this {
    return value ? this.varint(field, 1) : this;
  }

  string(field: number, value: string | undefined): this {
    return value ? this.bytesField(field, utf8.encode(value)) : this;
  }

  bytesField(field: number, value: Uint8Array): this {
    if (value.length === 0) return this;
    return this.message(field, value);
  }

  /** A nested message, written even when empty (an empty oneof member must still be present). */
  message(field: number, encoded: Uint8Array): this {
    this.tag(field, 2);
    this.rawVarint(encoded.length);
    for (let i = 0; i < encoded.length; i++) this.bytes.push(encoded[i]!);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }

  private tag(field: number, wireType: number): void {
    this.rawVarint(field * 8 + wireType);
  }

  /** Non-negative integers up to 2^53 (offsets), without 32-bit bit operations. */
  private rawVarint(value: number): void {
    while (value >= 0x80) {
      this.bytes.push((value % 0x80) + 0x80);
      value = Math.floor(value / 0x80);
    }
    this.bytes.push(value);
  }
}

export class Reader {
  pos = 0;

  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** Reads a field's tag: [field number, wire type]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t % 8];
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 0x80;
    }
    throw new Error('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.buf.length) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  /** Skips a field this SDK version does not know (newer servers may add fields). */
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 2) this.bytes();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const utf8 = {
  encode: (s: string): Uint8Array => encoder.encode(s),
  decode: (b: Uint8Array): string => decoder.decode(b),
};
