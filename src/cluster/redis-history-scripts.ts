import type { AppendGroup, Position, StoredRange } from './bus.js';

/**
 * Lua scripts behind channel history in Redis. Each touches one channel's two keys, hash-tagged
 * on the channel (`<prefix>h:{<channel>}` stream, `<prefix>hm:{<channel>}` meta: epoch `e`, top
 * offset `s`, time of the last TTL refresh `r`), so a script stays in one slot. Times come from
 * Redis's clock.
 *
 * The appends refresh the TTLs (PEXPIRE of stream and meta) only when the last refresh is ttl / 100
 * or more ago, or the stream or the meta is new, and then set them that much longer: the stream
 * still expires no earlier than ttl after its last publication (and at most 1 % later), the
 * position no earlier than metaTtl after it, and never before the stream. Entries older than ttl
 * are never served (their time `t` decides), so the extra life is invisible to readers.
 */

/**
 * Lua: reads the meta of KEYS `meta` (starting an epoch when there is none) into `epoch`, and
 * whether the TTLs are due into `refresh`; needs `t` (TIME), `nowMs` and `ttl` (number).
 */
const positionOf = (meta: string): string => `
  local m = redis.call('HMGET', ${meta}, 'e', 'r')
  local epoch = m[1]
  if not epoch then
    epoch = string.format('%x', tonumber(t[1])) .. '-' .. string.format('%x', tonumber(t[2]))
    redis.call('HSET', ${meta}, 'e', epoch)
  end
  local slack = math.floor(ttl / 100)
  local refresh = not m[2] or nowMs - tonumber(m[2]) >= slack`;

/**
 * Lua: XADDs to an existing `stream` (`trim`: with exact MAXLEN `size` too), else creates it
 * with a plain XADD and sets `refresh` (a stream that is not there, expired, removed or evicted,
 * gets its TTLs now whatever the last refresh time says).
 */
const addEntry = (trim: boolean): string => `
    if not redis.call('XADD', stream, 'NOMKSTREAM', ${trim ? "'MAXLEN', size, " : ''}id, 'd', d, 't', now, 'x', expires) then
      redis.call('XADD', stream, id, 'd', d, 't', now, 'x', expires)
      refresh = true
    end`;

/** Lua: the TTL refresh when due (`refresh`), with `slack` on top. */
const REFRESH_TTLS = `
  if refresh then
    redis.call('HSET', meta, 'r', now)
    redis.call('PEXPIRE', meta, metaTtl + slack)
    redis.call('PEXPIRE', stream, ttl + slack)
  end`;

/** Lua: TIME as ms (`now` a string, `nowMs` a number) and the positioned-payload mark. */
const NOW = `
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local nowMs = tonumber(now)
local mark = string.char(178)`;

/**
 * Assign the next offset, append, trim, refresh the TTLs when due and PUBLISH the positioned
 * payload in one step, so offsets are in delivery order on every node.
 * KEYS: stream, meta, [idempotency claim]. ARGV: channel, envelope, size, ttl ms, meta ttl ms,
 * message ttl ms, [claim value, claim ttl ms].
 * Returns {offset, epoch}, or {0, earlier claim value} for a duplicate.
 */
export const appendAndPublish = (publish: 'PUBLISH' | 'SPUBLISH'): string => `
if KEYS[3] then
  if not redis.call('SET', KEYS[3], ARGV[7], 'NX', 'PX', ARGV[8]) then
    return {0, redis.call('GET', KEYS[3])}
  end
end${NOW}
local stream, meta = KEYS[1], KEYS[2]
local d, size, ttl, metaTtl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
${positionOf('meta')}
local offset = redis.call('HINCRBY', meta, 's', 1)
local expires = '0'
if tonumber(ARGV[6]) > 0 then
  expires = tostring(nowMs + tonumber(ARGV[6]))
end
local id = offset .. '-1'${addEntry(true)}${REFRESH_TTLS}
redis.call('${publish}', ARGV[1], mark .. offset .. ' ' .. epoch .. '\\n' .. d)
return {offset, epoch}`;

/**
 * appendAndPublish for many publications (no idempotency claims) in one call: per channel one
 * HMGET of epoch and TTL refresh time, one HINCRBY by the count, and the TTLs only when due; per
 * publication its XADD (trimming as it goes) and its PUBLISH. One script is atomic: every
 * publication of the call is stored and published, in order, or (an error reply: Redis refuses
 * writes, e.g. OOM, before the first one) none.
 * KEYS: stream1, meta1, stream2, meta2, ... ARGV[1]: the groups packed by appendManyArgs.
 * Returns {epoch1, first offset1, epoch2, first offset2, ...}.
 */
export const appendManyAndPublish = (publish: 'PUBLISH' | 'SPUBLISH'): string => `${NOW}
local blob = ARGV[1]
local unpack = struct.unpack
local pos = 1
local out = {}
for k = 1, #KEYS, 2 do
  local stream, meta = KEYS[k], KEYS[k + 1]
  local n, size, ttl, metaTtl, clen
  n, size, ttl, metaTtl, clen, pos = unpack('<ddddd', blob, pos)
  local channel = string.sub(blob, pos, pos + clen - 1)
  pos = pos + clen
  ${positionOf('meta')}
  local last = redis.call('HINCRBY', meta, 's', n)
  local head = ' ' .. epoch .. '\\n'
  for offset = last - n + 1, last do
    local len, mttl
    len, mttl, pos = unpack('<dd', blob, pos)
    local d = string.sub(blob, pos, pos + len - 1)
    pos = pos + len
    local expires = '0'
    if mttl > 0 then
      expires = tostring(nowMs + mttl)
    end
    local id = offset .. '-1'
    -- The group's last XADD trims (exactly, to size) for all of them.
    if offset == last then${addEntry(true).replace(/\n/g, '\n  ')}
    else${addEntry(false).replace(/\n/g, '\n  ')}
    end
    redis.call('${publish}', channel, mark .. offset .. head .. d)
  end${REFRESH_TTLS}
  out[#out + 1] = epoch
  out[#out + 1] = last - n + 1
end
return out`;

/** Standalone Redis: plain PUBLISH. */
export const APPEND_MANY_AND_PUBLISH = appendManyAndPublish('PUBLISH');

/**
 * The numkeys, KEYS and ARGV of one appendManyAndPublish call for `groups`; `keysOf` names a
 * channel's stream and meta keys, `busChannelOf` its pub/sub channel. Everything but the keys goes
 * in one argument (per group: count, size, ttl ms, meta ttl ms and the bus channel's length as
 * little-endian doubles, the channel, then per publication its length and message ttl ms and its
 * bytes): each argument costs ioredis a string or two to encode, far more than packing it.
 */
export function appendManyArgs(groups: readonly AppendGroup[], keysOf: (channel: string) => [string, string], busChannelOf: (channel: string) => string): (string | Buffer)[] {
  const out: (string | Buffer)[] = [String(2 * groups.length)];
  const channels: string[] = new Array(groups.length);
  let bytes = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    const [stream, meta] = keysOf(g.channel);
    out.push(stream, meta);
    channels[i] = busChannelOf(g.channel);
    bytes += 40 + Buffer.byteLength(channels[i]!);
    for (const p of g.payloads) bytes += 16 + p.length;
  }
  const blob = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    at = blob.writeDoubleLE(g.payloads.length, at);
    at = blob.writeDoubleLE(g.size, at);
    at = blob.writeDoubleLE(g.ttlMs, at);
    at = blob.writeDoubleLE(g.metaTtlMs, at);
    const channelAt = at + 8;
    const channelBytes = blob.write(channels[i]!, channelAt, 'utf8');
    blob.writeDoubleLE(channelBytes, at);
    at = channelAt + channelBytes;
    for (let k = 0; k < g.payloads.length; k++) {
      const p = g.payloads[k]!;
      at = blob.writeDoubleLE(p.length, at);
      at = blob.writeDoubleLE(g.messageTtlMs[k] ?? 0, at);
      at += p.copy(blob, at);
    }
  }
  out.push(blob);
  return out;
}

/** appendManyAndPublish's reply: each group's epoch and first offset. */
export function parsePositions(reply: unknown, count: number): Position[] {
  const r = reply as (string | number)[];
  if (!Array.isArray(r) || r.length !== 2 * count) throw new Error(`unexpected reply of the append script (${String(r)})`);
  const out: Position[] = [];
  for (let i = 0; i < r.length; i += 2) out.push({ epoch: String(r[i]), offset: Number(r[i + 1]) });
  return out;
}

/**
 * The position and a range of entries, read together.
 * KEYS: stream, meta. ARGV: after (offset), count, reverse ('1' or '0').
 * Returns {epoch or '', top, now ms, entries}: the entries as one string, each
 * "<entry id> <time> <expires> <length>\n<envelope>" (parseRange): one reply item for the lot
 * instead of four per entry, each of which ioredis would turn into a Buffer.
 */
export const READ_RANGE = `
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local meta = redis.call('HMGET', KEYS[2], 'e', 's')
if not meta[1] then
  return {'', 0, now, ''}
end
local from = (tonumber(ARGV[1]) + 1) .. '-0'
local entries
if ARGV[3] == '1' then
  entries = redis.call('XREVRANGE', KEYS[1], '+', from, 'COUNT', ARGV[2])
else
  entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ARGV[2])
end
local parts = {}
local n = 0
for _, e in ipairs(entries) do
  local f = e[2]
  local d, at, x = f[2], f[4], f[6]
  -- The appends write d, t, x in this order; anything else is looked up by name.
  if f[1] ~= 'd' or f[3] ~= 't' or f[5] ~= 'x' then
    local v = {}
    for i = 1, #f, 2 do v[f[i]] = f[i + 1] end
    d, at, x = v['d'], v['t'], v['x']
  end
  parts[n + 1] = e[1]
  parts[n + 2] = ' '
  parts[n + 3] = at
  parts[n + 4] = ' '
  parts[n + 5] = x
  parts[n + 6] = ' '
  parts[n + 7] = #d
  parts[n + 8] = '\\n'
  parts[n + 9] = d
  n = n + 9
end
return {meta[1], tonumber(meta[2]), now, table.concat(parts)}`;

/** Standalone Redis: plain PUBLISH (Redis Cluster uses SPUBLISH to the channel's shard). */
export const APPEND_AND_PUBLISH = appendAndPublish('PUBLISH');

/** READ_RANGE's reply (evaluated with Buffer replies) as a StoredRange; the envelopes are slices of the reply. */
export function parseRange(reply: (Buffer | number)[]): StoredRange {
  const str = (v: Buffer | number | undefined): string => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v ?? ''));
  const range: StoredRange = { epoch: str(reply[0]), top: Number(reply[1]), now: Number(str(reply[2])), entries: [] };
  const b = reply[3];
  if (!Buffer.isBuffer(b)) return range;
  // Digits from `at` on, as a number; `at` moves past them and the one byte after (a separator).
  let at = 0;
  const num = (): number => {
    let v = 0;
    for (let c = b[at]!; c >= 0x30 && c <= 0x39; c = b[++at]!) v = v * 10 + (c - 0x30);
    at++;
    return v;
  };
  while (at < b.length) {
    const offset = num();
    while (b[at - 1] !== 0x20) at++; // the entry id's "-<seq>"
    const time = num();
    const expiresAt = num();
    const length = num();
    range.entries.push({ offset, payload: b.subarray(at, at + length), time, expiresAt });
    at += length;
  }
  if (at !== b.length) throw new Error('truncated history range reply');
  return range;
}
