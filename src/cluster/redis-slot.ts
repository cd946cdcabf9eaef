/**
 * Redis Cluster's key → slot mapping (CRC16/XMODEM of the hash tag or the whole key, mod
 * 16384), so the sharded subscriber can tell which master owns a channel without asking.
 */
const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  TABLE[i] = crc;
}

export const SLOTS = 16384;

/** The part of a key Redis hashes: the text of the first non-empty `{...}`, else the whole key. */
export function hashTagOf(key: Buffer): Buffer {
  const open = key.indexOf(0x7b); // {
  if (open === -1) return key;
  const close = key.indexOf(0x7d, open + 1); // }
  if (close === -1 || close === open + 1) return key;
  return key.subarray(open + 1, close);
}

export function slotOf(key: string | Buffer): number {
  const bytes = hashTagOf(typeof key === 'string' ? Buffer.from(key) : key);
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc % SLOTS;
}
