import type { AppendGroup, Position, StoredRange } from './bus.js';

/**
 * Lua scripts behind channel history in Redis. Each touches one channel's two keys, hash-tagged
 * on the channel (`<prefix>h:{<channel>}` stream, `<prefix>hm:{<channel>}` meta: epoch `e`, top
 * offset `s`), so a script stays in one slot. Times come from Redis's clock.
 */

/**
 * Assign the next offset, append, trim, refresh the TTLs and PUBLISH the positioned payload in
 * one step, so offsets are in delivery order on every node.
 * KEYS: stream, meta, [idempotency claim]. ARGV: channel, envelope, size, ttl ms, meta ttl ms,
 * message ttl ms, [claim value, claim ttl ms].
 * Returns {offset, epoch}, or {0, earlier claim value} for a duplicate.
 */
export const appendAndPublish = (publish: 'PUBLISH' | 'SPUBLISH'): string => `
if KEYS[3] then
  if not redis.call('SET', KEYS[3], ARGV[7], 'NX', 'PX', ARGV[8]) then
    return {0, redis.call('GET', KEYS[3])}
  end
end
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = string.format('%x', tonumber(t[1])) .. '-' .. string.format('%x', tonumber(t[2]))
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local expires = '0'
if tonumber(ARGV[6]) > 0 then
  expires = tostring(tonumber(now) + tonumber(ARGV[6]))
end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], offset .. '-1', 'd', ARGV[2], 't', now, 'x', expires)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('${publish}', ARGV[1], string.char(178) .. offset .. ' ' .. epoch .. '\\n' .. ARGV[2])
return {offset, epoch}`;

/**
 * appendAndPublish for many publications (no idempotency claims) in one call: per channel one
 * epoch read, one HINCRBY by the count, one trim and the TTLs; per publication its XADD and its
 * PUBLISH. One script is atomic: every publication of the call is stored and published, in
 * order, or (an error reply: Redis refuses writes, e.g. OOM, before the first one) none.
 * KEYS: stream1, meta1, stream2, meta2, ... ARGV per channel: channel, size, ttl ms, meta ttl ms,
 * count n, then n pairs (message ttl ms, envelope).
 * Returns {epoch1, first offset1, epoch2, first offset2, ...}.
 */
export const appendManyAndPublish = (publish: 'PUBLISH' | 'SPUBLISH'): string => `
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local nowMs = tonumber(now)
local mark = string.char(178)
local out = {}
local a = 1
for k = 1, #KEYS, 2 do
  local stream, meta = KEYS[k], KEYS[k + 1]
  local channel, n = ARGV[a], tonumber(ARGV[a + 4])
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = string.format('%x', tonumber(t[1])) .. '-' .. string.format('%x', tonumber(t[2]))
    redis.call('HSET', meta, 'e', epoch)
  end
  local last = redis.call('HINCRBY', meta, 's', n)
  redis.call('PEXPIRE', meta, ARGV[a + 3])
  local head = ' ' .. epoch .. '\\n'
  local size, ttl = ARGV[a + 1], ARGV[a + 2]
  a = a + 5
  for offset = last - n + 1, last do
    local mttl = tonumber(ARGV[a])
    local d = ARGV[a + 1]
    a = a + 2
    local expires = '0'
    if mttl > 0 then
      expires = tostring(nowMs + mttl)
    end
    redis.call('XADD', stream, offset .. '-1', 'd', d, 't', now, 'x', expires)
    redis.call('${publish}', channel, mark .. offset .. head .. d)
  end
  redis.call('XTRIM', stream, 'MAXLEN', size)
  redis.call('PEXPIRE', stream, ttl)
  out[#out + 1] = epoch
  out[#out + 1] = last - n + 1
end
return out`;

/** Standalone Redis: plain PUBLISH. */
export const APPEND_MANY_AND_PUBLISH = appendManyAndPublish('PUBLISH');

/**
 * KEYS and ARGV of one appendManyAndPublish call for `groups`; `keysOf` names a channel's stream
 * and meta keys, `busChannelOf` its pub/sub channel.
 */
export function appendManyArgs(groups: readonly AppendGroup[], keysOf: (channel: string) => [string, string], busChannelOf: (channel: string) => string): (string | Buffer)[] {
  const keys: string[] = [];
  const args: (string | Buffer)[] = [];
  for (const g of groups) {
    const [stream, meta] = keysOf(g.channel);
    keys.push(stream, meta);
    args.push(busChannelOf(g.channel), String(g.size), String(g.ttlMs), String(g.metaTtlMs), String(g.payloads.length));
    for (let i = 0; i < g.payloads.length; i++) args.push(String(g.messageTtlMs[i] ?? 0), g.payloads[i]!);
  }
  // numkeys, KEYS, ARGV: the script command's argument list.
  return [String(keys.length), ...keys, ...args];
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
 * Returns {epoch or '', top, now ms, offset1, envelope1, time1, expires1, ...}.
 */
export const READ_RANGE = `
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local meta = redis.call('HMGET', KEYS[2], 'e', 's')
if not meta[1] then
  return {'', 0, now}
end
local out = {meta[1], tonumber(meta[2]), now}
local from = (tonumber(ARGV[1]) + 1) .. '-0'
local entries
if ARGV[3] == '1' then
  entries = redis.call('XREVRANGE', KEYS[1], '+', from, 'COUNT', ARGV[2])
else
  entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ARGV[2])
end
for _, e in ipairs(entries) do
  local f = e[2]
  local v = {}
  for i = 1, #f, 2 do v[f[i]] = f[i + 1] end
  out[#out + 1] = string.match(e[1], '^(%d+)')
  out[#out + 1] = v['d']
  out[#out + 1] = v['t']
  out[#out + 1] = v['x']
end
return out`;

/** Standalone Redis: plain PUBLISH (Redis Cluster uses SPUBLISH to the channel's shard). */
export const APPEND_AND_PUBLISH = appendAndPublish('PUBLISH');

/** READ_RANGE's reply (evaluated with Buffer replies) as a StoredRange. */
export function parseRange(reply: (Buffer | number)[]): StoredRange {
  const str = (v: Buffer | number | undefined): string => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v ?? ''));
  const range: StoredRange = { epoch: str(reply[0]), top: Number(reply[1]), now: Number(str(reply[2])), entries: [] };
  for (let i = 3; i + 3 < reply.length; i += 4) {
    range.entries.push({ offset: Number(str(reply[i])), payload: reply[i + 1] as Buffer, time: Number(str(reply[i + 2])), expiresAt: Number(str(reply[i + 3])) });
  }
  return range;
}
