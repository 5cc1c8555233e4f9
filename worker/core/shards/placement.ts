// Where a key lives among the customer shards: a stable 64-bit hash of the key (FNV-1a) placed by
// jump consistent hashing (Lamping & Veach 2014, "A Fast, Minimal Memory, Consistent Hash Algorithm"),
// so growing from n to n + 1 shards moves about 1/(n + 1) of the keys, all of them to the new shard.
// Pure: the worker, the shards and the CLI's migration place keys with these functions alone.

const fnvOffset = 0xcbf29ce484222325n;
const fnvPrime = 0x100000001b3n;
const mask64 = (1n << 64n) - 1n;

/** FNV-1a over the UTF-16 code units of `text`, as an unsigned 64-bit integer. */
export function hash64(text: string): bigint {
  let hash = fnvOffset;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * fnvPrime) & mask64;
  }
  return hash;
}

/** Jump consistent hash: the bucket in [0, buckets) of a 64-bit key. */
export function jumpHash(key: bigint, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1)
    throw new RangeError(`buckets must be a positive integer, not ${buckets}`);
  let k = key & mask64;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & mask64;
    j = Math.floor(((b + 1) * 2 ** 31) / (Number(k >> 33n) + 1));
  }
  return b;
}

/** The home shard of a key (an identity key, `customer:<id>`, `order:<id>`) among `count` shards. */
export function homeShard(key: string, count: number): number {
  return jumpHash(hash64(key), count);
}

/**
 * Of `keys`, those whose home among `to` shards is another than among `from`, each with its new home:
 * the directory entries a reshard from `from` to `to` writes there. Jump consistent hashing moves a
 * home only between the shards one count has and the other lacks: growing, a key homed anew is homed in
 * one of the shards added; shrinking, only the keys homed in the shards removed are homed anew. Every
 * other key keeps its home, and its entry, where it was.
 */
export function rehomed(keys: readonly string[], from: number, to: number): { key: string; home: number }[] {
  const moved: { key: string; home: number }[] = [];
  for (const key of keys) {
    // Growing, a key homed anew is homed at or past `from`; shrinking, it was homed at or past `to`.
    if (from > to && homeShard(key, from) < to) continue;
    const home = homeShard(key, to);
    if (from > to || home >= from) moved.push({ key, home });
  }
  return moved;
}

/**
 * Where a region held in a shard a shrinking reshard removes goes among the `to` shards that stay: the
 * home of its least account key, where the shopper's shelf is one call; else (no account key: a card or
 * an email alone) of its least identity key; else (a guest, whose orders carried no verified
 * identifier) of its least source (`order:<id>`), as a new region is placed. Null for an empty region.
 */
export function drainTarget(
  region: { keys: readonly string[]; sources: readonly string[] },
  to: number,
): number | null {
  const keys = [...region.keys].sort();
  const key = keys.find((each) => each.startsWith("account:")) ?? keys[0] ?? [...region.sources].sort()[0];
  return key === undefined ? null : homeShard(key, to);
}

/**
 * Where a region held in shard `here` belongs among `count` shards (a rebalance pass): a signed-in
 * shopper's shelf is one call to the home of their account key, which forwards once when the region is
 * elsewhere, so a region with an account key homed `here` stays (null) and one whose account keys are
 * all homed elsewhere belongs at the home of the least of them. A region with no account key (a card or
 * an email alone: each in-store order and lookup starts at its key's home) goes by its identity keys the
 * same way, and a guest's by its sources, so after growing the new shards take their share of every kind
 * of customer. The target is where drainTarget places the region, so a second pass leaves it there.
 */
export function balancedHome(
  region: { keys: readonly string[]; sources: readonly string[] },
  here: number,
  count: number,
): number | null {
  const accounts = region.keys.filter((key) => key.startsWith("account:"));
  const deciding = accounts.length > 0 ? accounts : region.keys.length > 0 ? region.keys : region.sources;
  if (deciding.length === 0 || deciding.some((key) => homeShard(key, count) === here)) return null;
  return drainTarget(region, count);
}

/**
 * The most customer shards a deployment may have: 10 TB at 10 GB each, about 600 million customers at
 * the 16.1 KiB each the scale bench measured on its mixed base (about 700 million at its earlier base's
 * 13.3–14.1 KiB, one web account each). Requests and nightly steps that ask every shard make one
 * or two calls a shard, so at this count they stay within Workers Paid's 10,000 subrequests an
 * invocation (tests/worker/shards/subrequests.test.ts; docs/scaling.md, calls per request).
 */
export const maxShards = 1_000;

/**
 * SHARD_COUNT as a number: 0 (or unset, blank) keeps customer data in the one D1 database; 1 to
 * maxShards puts it in that many customer shards. Anything else is null (a configuration problem).
 */
export function parseShardCount(setting: string | undefined): number | null {
  const text = (setting ?? "").trim();
  if (text === "") return 0;
  if (!/^\d+$/.test(text)) return null;
  const count = Number(text);
  return count <= maxShards ? count : null;
}

/** The directory key of a customer id. */
export const customerKey = (customerId: string) => `customer:${customerId}`;

/**
 * A new customer id (`c_` and 20 hex digits, as everywhere) whose home is `shard`: a shard creates
 * its customers with ids that hash to itself, so a customer is found by its id alone until a merge
 * or a reshard moves it (then its home shard's directory says where). Draws from `randomHex` until
 * one lands; on average `count` draws.
 */
export function customerIdHomedAt(shard: number, count: number, randomHex: () => string): string {
  for (;;) {
    const id = `c_${randomHex().slice(0, 20)}`;
    if (homeShard(customerKey(id), count) === shard) return id;
  }
}

/** The start of the error a shard throws when SHARD_COUNT is not the count it was placed for. */
export const shardCountChanged = "shard_count_changed";

/**
 * Why a shard must refuse to serve, or null: its data was placed for `recorded` shards (the count it
 * first served with) and the deployment now says `current`. Every key's home would differ, so the
 * directory would miss customers, unless a reshard prepared them for it (worker/shards/reshard.ts).
 */
export function shardCountProblem(recorded: number | undefined, current: number): string | null {
  if (recorded === undefined || current === 0 || recorded === current) return null;
  const reshard = `, or, with it set back, run patron shards reshard --to ${current} first, then set it again (docs/scaling.md, resharding)`;
  return `${shardCountChanged}: SHARD_COUNT is ${current}, but the customer shards were placed for ${recorded}. Set it back to ${recorded}${reshard}.`;
}

/** The start of the error a shard throws for a write whose keys the caller placed by another count than its own. */
export const shardCountSkew = "shard_count_skew";

/**
 * Why shard `index`, serving `count` shards, must refuse a write whose keys its caller placed by
 * `placedBy`, or null. Each key's directory entry lives at its home among the count, so a write placed
 * by another count would put entries where no read looks: a Worker (or a shard) still on the old
 * version while a reshard's new count rolls out.
 *
 * A shard past its count is not in use yet: one a reshard adds, before the switch, or every shard while
 * a deployment on D1 (count 0) migrates into them. It takes what fills it (`filling`: directory
 * entries and copied regions, from a reshard's walk, a migration or a move) when they are placed by a
 * count that includes it, and nothing else (it could not create customers homed in itself).
 *
 * A caller on a version before this check sends no count (undefined): its write is taken as before.
 */
export function placedByProblem(
  placedBy: number | undefined,
  count: number,
  index: number,
  filling = false,
): string | null {
  // A caller on a version before this check sends no count: taken as before, so deploying the check
  // does not refuse the writes of the version it replaces.
  if (typeof placedBy !== "number") return null;
  if (placedBy === count || (filling && index >= count && placedBy > index)) return null;
  return `${shardCountSkew}: this request placed its keys among ${placedBy} customer shards, but the shards serve ${count}: the deployment is switching SHARD_COUNT (patron shards reshard). Send it again; it is refused until every Worker runs with SHARD_COUNT = ${count}.`;
}

/** The mark a prepared shard keeps in its storage (key `reshardTo`) until the reshard finishes. */
export interface ReshardMark {
  /** The count the shard may serve with besides the one it recorded (writes only under this one). */
  count: number;
  /** When the walk began: the shard was checked for writes since then before it was marked. */
  since: string;
}

/** The start of the error a prepared shard throws for a write under the count it is leaving. */
export const reshardPrepared = "reshard_prepared";

/** Why a write must be refused here now, or null: the shard is prepared for `mark.count` and serves `count`. */
export function preparedWriteProblem(mark: ReshardMark | undefined, count: number): string | null {
  if (!mark || mark.count === count) return null;
  return `${reshardPrepared}: a reshard from ${count} to ${mark.count} customer shards is prepared, so customer data takes no writes until the deployment runs with SHARD_COUNT = ${mark.count} (patron shards reshard; docs/scaling.md, resharding).`;
}
