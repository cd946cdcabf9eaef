/**
 * Orders strings as Redis orders members in ZRANGEBYLEX: by their UTF-8 bytes, i.e. by code
 * point. JS's `<` compares UTF-16 code units, which differs for surrogates against U+E000-U+FFFF.
 */
export function compareBytewise(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

const rank = (u: number): number => (u >= 0xd800 && u <= 0xdfff ? u + 0x2000 : u >= 0xe000 ? u - 0x800 : u);

/** A sorted set of strings with bounded range reads (the in-memory twin of a lex ZSET). */
export class SortedStrings {
  private readonly items: string[] = [];

  get size(): number {
    return this.items.length;
  }

  add(s: string): void {
    const i = this.lowerBound(s);
    if (this.items[i] !== s) this.items.splice(i, 0, s);
  }

  delete(s: string): void {
    const i = this.lowerBound(s);
    if (this.items[i] === s) this.items.splice(i, 1);
  }

  /** Up to `limit` members after `after` (exclusive; undefined: from the start). */
  range(after: string | undefined, limit: number): string[] {
    let i = after === undefined ? 0 : this.lowerBound(after);
    if (after !== undefined && this.items[i] === after) i++;
    return this.items.slice(i, i + limit);
  }

  private lowerBound(s: string): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytewise(this.items[mid]!, s) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
