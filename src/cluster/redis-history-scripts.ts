import type { StoredRange } from './bus.js';

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
