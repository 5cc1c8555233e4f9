// Closed-loop load for the benchmarks: `connections` clients each sending the next request as soon as
// the last answered, with throughput and latency percentiles.
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
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { requestsPerSecond: requests / seconds, p50: at(0.5), p99: at(0.99), errors };
}

export const fmt = (r: LoadResult) =>
  `${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, unexpected status ${r.errors}`;

/** The median of several rounds by throughput, so a burst of load from elsewhere does not decide. */
export const medianRound = (results: LoadResult[]) =>
  [...results].sort((x, y) => x.requestsPerSecond - y.requestsPerSecond)[Math.floor(results.length / 2)] as LoadResult;
