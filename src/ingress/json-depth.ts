/**
 * Client JSON is parsed by V8 (iterative: any depth) but serialised again and walked by
 * recursive code (JSON.stringify, validators), which overflows the stack somewhere between
 * 3,000 and 10,000 levels depending on frame sizes. A process-wide RangeError is a remote
 * crash, so every ingress refuses JSON nested deeper than this before anything walks it.
 * Go's encoding/json (gpush, ws-cluster) allows 10,000; no real message comes near 512.
 */
export const MAX_JSON_DEPTH = 512;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Whether JSON text nests arrays/objects deeper than `max`. One linear pass, no allocation,
 * no recursion; brackets inside strings do not count. Meant for text JSON.parse accepts (or
 * is about to be given): on malformed text it answers something, and JSON.parse decides.
 */
export function nestsDeeperThan(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return false;
}

/** The detail/message every ingress gives for over-deep JSON. */
export const TOO_DEEP = `JSON nested deeper than ${MAX_JSON_DEPTH} levels`;
