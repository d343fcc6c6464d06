import type { Logger } from '@bus/core';
import { messageOf } from './client.js';
import { type Command, pipeline } from './commands.js';
import type { RedisClient } from './options.js';

/**
 * Safe retention, one stream (KEYS[1]) at a time, atomically:
 * 1. the oldest entry some group still needs = the lowest, over every group, of its last-delivered
 *    id and its oldest pending id (XINFO GROUPS, XPENDING summary);
 * 2. `XTRIM MINID <op> <that id>` (ARGV[1] = '~' or '='), which deletes only entries below it;
 * 3. reports, per group, how many entries it had not been delivered were trimmed before it got them
 *    (by a hard cap, `trim.maxLen` / `trim.maxAgeMs`, or by anyone's XTRIM/XDEL): when the stream's
 *    first entry is past the group's last-delivered id, `entries-added − entries-read − XLEN`
 *    (not counted when Redis does not know the group's entries-read; a group created at 0 that has
 *    read nothing counts as having read nothing, so one created after a cap trimmed counts the
 *    entries trimmed before it existed too).
 * A stream without any group is left alone (no one is known to need or not need its entries).
 * Returns `{ trimmed, group1, lost1, group2, lost2, … }`.
 */
const SAFE_TRIM = `
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {0} end
local floor = nil
local infos = {}
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  infos[#infos + 1] = info
  local need = info['last-delivered-id']
  if info['pending'] > 0 then
    local summary = redis.call('XPENDING', KEYS[1], info['name'])
    if summary[2] and less(summary[2], need) then need = summary[2] end
  end
  if floor == nil or less(need, floor) then floor = need end
end
local out = {0}
local stream = redis.call('XINFO', 'STREAM', KEYS[1])
local s = {}
for i = 1, #stream, 2 do s[stream[i]] = stream[i + 1] end
local length = s['length']
local first = s['first-entry'] and s['first-entry'][1] or nil
for _, info in ipairs(infos) do
  local last = info['last-delivered-id']
  local gap = false
  if first then gap = less(last, first) else gap = less(last, s['last-generated-id']) end
  local read = info['entries-read']
  -- Unknown (nil) for a group created at 0 before anything was read: it has read nothing.
  if type(read) ~= 'number' and last == '0-0' then read = 0 end
  if gap and type(read) == 'number' then
    local lost = s['entries-added'] - read - length
    if lost > 0 then
      out[#out + 1] = info['name']
      out[#out + 1] = lost
    end
  end
end
if floor ~= '0-0' then out[1] = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1], floor) end
return out`;

/** What one retention pass did on one stream. */
export interface RetentionResult {
  key: string;
  /** Entries deleted by this pass (none of them needed by any group). */
  trimmed: number;
  /** Per group: entries it had not been delivered that are gone (trimmed by a hard cap or deleted). */
  lost: Map<string, number>;
}

/**
 * Runs one safe-retention pass on each stream (one `EVAL` each; in a Cluster each stream is one key
 * and is sent to its node). Best effort: a failure is logged at debug level and retried next pass.
 */
export async function safeTrim(client: RedisClient, keys: readonly string[], exact: boolean): Promise<RetentionResult[]> {
  const replies = await Promise.all(keys.map((key) => pipeline(client, [['EVAL', SAFE_TRIM, 1, key, exact ? '=' : '~'] satisfies Command])));
  return replies.map(([reply], i) => {
    const key = keys[i] as string;
    if (!reply || reply.error || !Array.isArray(reply.value)) throw reply?.error ?? new Error('unexpected reply to the retention script');
    const [trimmed, ...rest] = reply.value as unknown[];
    const lost = new Map<string, number>();
    for (let j = 0; j + 1 < rest.length; j += 2) lost.set(String(rest[j]), Number(rest[j + 1]));
    return { key, trimmed: Number(trimmed), lost };
  });
}

/**
 * Runs {@link safeTrim} at most every `intervalMs` for one subscription's streams, and warns when a
 * group lost entries it had not had (counted once per newly observed entry, per member).
 */
export class Retention {
  private readonly nextAt = new Map<string, number>();
  private readonly reported = new Map<string, number>();
  /** Entries trimmed by this member's passes (none needed by any group). */
  trimmed = 0;
  /** Entries observed gone before every group had them (hard caps or deletions), as counted by this member. */
  lostBeforeDelivery = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly exact: boolean,
    private readonly log: Logger,
    private readonly onLost?: (key: string, group: string, count: number) => void,
  ) {}

  /** Runs a pass when one is due. Never throws. */
  async maybeRun(client: RedisClient, keys: readonly string[]): Promise<void> {
    const now = Date.now();
    const slot = keys.join('\n');
    if (now < (this.nextAt.get(slot) ?? 0)) return;
    this.nextAt.set(slot, now + this.intervalMs);
    try {
      const results = await safeTrim(client, keys, this.exact);
      for (const r of results) {
        this.trimmed += r.trimmed;
        if (r.trimmed > 0) this.log.debug('retention trimmed entries every group had', { stream: r.key, trimmed: r.trimmed });
        for (const [group, lost] of r.lost) {
          const id = `${r.key}\n${group}`;
          const delta = lost - (this.reported.get(id) ?? 0);
          if (delta <= 0) continue;
          this.reported.set(id, lost);
          this.lostBeforeDelivery += delta;
          this.onLost?.(r.key, group, delta);
          this.log.warn('entries were trimmed before a consumer group had them (trim.maxLen / trim.maxAgeMs cap, or deleted): they are lost for that group', {
            stream: r.key,
            group,
            count: delta,
            total: lost,
          });
        }
      }
    } catch (error) {
      this.log.debug('retention pass failed; retried at the next one', { error: messageOf(error) });
    }
  }
}
