// Closed-loop load for the benchmarks: `connections` clients each sending the next request as soon as
// the last answered, with throughput and latency percentiles; routes compared in alternated blocks; the
// CPU and memory of the worker's processes.
import { existsSync, readdirSync, readFileSync } from "node:fs";

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

export async function load(
  requests: number,
  connections: number,
  send: (i: number) => Promise<Response>,
  expectedStatus = 200,
): Promise<LoadResult> {
  const { seconds, latencies, errors } = await timedLoad(requests, connections, send, expectedStatus);
  return { requestsPerSecond: requests / seconds, ...percentiles(latencies), errors };
}

/** p50 and p99 of latencies in ms. */
function percentiles(latencies: readonly number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
}

export const fmt = (r: LoadResult) =>
  `${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, unexpected status ${r.errors}`;

/** The median of several rounds by throughput, so a burst of load from elsewhere does not decide. */
export const medianRound = (results: LoadResult[]) =>
  [...results].sort((x, y) => x.requestsPerSecond - y.requestsPerSecond)[Math.floor(results.length / 2)] as LoadResult;

/** One side of a comparison, measured in blocks that interleave with the other sides'. */
interface Side {
  send: (i: number) => Promise<Response>;
  expectedStatus: number;
}

/**
 * A side's figures in one round, with the server's CPU time and the bytes it read from disk per request
 * when they can be read.
 */
export type RoundResult = LoadResult & { cpuMsPerRequest: number | null; diskKiBPerRequest: number | null };

/** What the server has used so far: CPU seconds, and bytes its reads fetched from disk (not the page cache). */
export interface ServerCounters {
  cpuSeconds: number;
  /** Null where /proc/<pid>/io cannot be read. */
  readBytes: number | null;
}

/** A candidate against a baseline in one round. */
export interface AlternatedRound {
  baseline: RoundResult;
  candidate: RoundResult;
  /** candidate req/s ÷ baseline req/s, within the round. */
  ratio: number;
}

/**
 * Routes compared fairly on a shared, noisy machine: each round sends `requests` to each side in
 * `blocks` blocks; in each block every side sends its share in turn, and which side goes first moves on
 * by one every block and every round, so a burst of load from elsewhere lands on every side alike. A
 * side's figures in a round pool its blocks: req/s is its requests over the time its own blocks took,
 * and the percentiles are over all its latencies in the round. A side's `i`-th request of the whole run
 * is `send(i)`, so a side that must not repeat (a first visit) never does. `server`, when given, reads
 * the server's counters so far: each side is charged the CPU the server used and the bytes it read from
 * disk during its own blocks (the machine's other work is not in them, unlike wall time).
 */
export async function interleavedRounds<Name extends string>(
  rounds: number,
  requests: number,
  connections: number,
  blocks: number,
  sides: Record<Name, Side>,
  server: () => ServerCounters | null = () => null,
): Promise<Record<Name, RoundResult>[]> {
  const names = Object.keys(sides) as Name[];
  const perBlock = Math.ceil(requests / blocks);
  const results: Record<Name, RoundResult>[] = [];
  for (let round = 0; round < rounds; round++) {
    const pooled = Object.fromEntries(names.map((name) => [name, emptyPool()])) as Record<Name, Pool>;
    for (let block = 0; block < blocks; block++) {
      const first = (round + block) % names.length;
      for (const name of [...names.slice(first), ...names.slice(0, first)]) {
        const side = sides[name];
        const offset = (round * blocks + block) * perBlock;
        const before = server();
        const result = await timedLoad(perBlock, connections, (i) => side.send(offset + i), side.expectedStatus);
        const after = server();
        const pool = pooled[name];
        pool.cpuSeconds =
          before === null || after === null ? null : (pool.cpuSeconds ?? 0) + after.cpuSeconds - before.cpuSeconds;
        pool.readBytes =
          before?.readBytes == null || after?.readBytes == null || pool.readBytes === null
            ? null
            : pool.readBytes + after.readBytes - before.readBytes;
        pool.seconds += result.seconds;
        pool.latencies.push(...result.latencies);
        pool.errors += result.errors;
      }
    }
    results.push(Object.fromEntries(names.map((name) => [name, resultOf(pooled[name])])) as Record<Name, RoundResult>);
  }
  return results;
}

type Pool = ReturnType<typeof emptyPool>;

const emptyPool = () => ({
  seconds: 0,
  latencies: [] as number[],
  errors: 0,
  cpuSeconds: 0 as number | null,
  readBytes: 0 as number | null,
});

function resultOf(pool: Pool): RoundResult {
  const count = pool.latencies.length;
  return {
    requestsPerSecond: count / pool.seconds,
    ...percentiles(pool.latencies),
    errors: pool.errors,
    cpuMsPerRequest: pool.cpuSeconds === null ? null : (pool.cpuSeconds * 1000) / count,
    diskKiBPerRequest: pool.readBytes === null ? null : pool.readBytes / 1024 / count,
  };
}

async function timedLoad(
  requests: number,
  connections: number,
  send: (i: number) => Promise<Response>,
  expectedStatus: number,
) {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < requests) {
        const i = next++;
        const t = performance.now();
        const response = await send(i);
        await response.arrayBuffer();
        latencies.push(performance.now() - t);
        // Any other answer is an error (a 429 would be a fast answer that flatters the figures).
        if (response.status !== expectedStatus) errors++;
      }
    }),
  );
  return { seconds: (performance.now() - start) / 1000, latencies, errors };
}

/** The round whose ratio is the median of all rounds (an odd count gives a real round). */
export const medianRatioRound = (rounds: AlternatedRound[]) =>
  [...rounds].sort((x, y) => x.ratio - y.ratio)[Math.floor(rounds.length / 2)] as AlternatedRound;

/**
 * CPU seconds used so far, bytes read from disk so far (`read_bytes` of /proc/<pid>/io: what the reads
 * fetched from storage, not what the page cache answered; null when a process's cannot be read), and
 * resident memory now, by the processes
 * named `name` that descend from this one (the workerd processes `wrangler dev` runs, which serve the
 * worker, its local D1 and its Durable Objects). Read from /proc; null where there is none (not Linux).
 */
export function descendantProcesses(
  name: string,
): { cpuSeconds: number; readBytes: number | null; rssBytes: number; peakRssBytes: number } | null {
  if (!existsSync("/proc/self/stat")) return null;
  const ticksPerSecond = 100;
  const parentOf = new Map<number, number>();
  const named: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parentOf.set(Number(entry), Number(fields[1]));
      if (stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) === name) named.push(Number(entry));
    } catch {
      // The process ended while the list was read.
    }
  }
  const descends = (pid: number) => {
    for (let parent = parentOf.get(pid); parent !== undefined && parent > 1; parent = parentOf.get(parent))
      if (parent === process.pid) return true;
    return false;
  };
  let cpuSeconds = 0;
  let readBytes: number | null = 0;
  let rssBytes = 0;
  let peakRssBytes = 0;
  for (const pid of named.filter(descends)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime and stime, the 14th and 15th fields of /proc/<pid>/stat.
      cpuSeconds += (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
      rssBytes += kib("VmRSS");
      peakRssBytes += kib("VmHWM");
    } catch {
      // Ended meanwhile.
    }
    try {
      const io = /^read_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1];
      readBytes = io === undefined || readBytes === null ? null : readBytes + Number(io);
    } catch (error) {
      // Ended meanwhile (ENOENT), or not ours to read: then there is no figure.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") readBytes = null;
    }
  }
  return { cpuSeconds, readBytes, rssBytes, peakRssBytes };
}
