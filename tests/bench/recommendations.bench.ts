// GET /v1/recommendations for a known shopper on local `wrangler dev`, next to a bare single-row D1
// read (GET /v1/customers/:id of an unknown id: auth + one primary-key SELECT) measured in the same
// run, with the ratio. Seeds N generated customers first (default 10k; pass 100000 for the larger run).
// Usage: npm run bench -- recommendations [customers=10000] [requests=400] [connections=8]
import { generateCustomers, generateProducts } from "../../db/seed/generate.ts";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { startDevWorker, testSecrets } from "../fixtures/wrangler-dev.ts";
import { fmt, type LoadResult, load, medianRound } from "./measure.ts";

export default async function recommendationsBench(args: string[]) {
  const customers = Number(args[0] ?? 10_000);
  const requests = Number(args[1] ?? 400);
  const connections = Number(args[2] ?? 8);
  // Limits off: one loopback address sends every request, far over the per-address limit.
  const worker = await startDevWorker({ vars: { RATE_LIMITS: "off" } });
  const apiHeaders = { Authorization: `Bearer ${testSecrets.PATRON_API_KEY}`, "Content-Type": "application/json" };
  try {
    const seed = { seed: 11, customers, today: new Date().toISOString().slice(0, 10), includePersonas: true };
    const products = generateProducts(seed);
    for (let i = 0; i < products.length; i += 1000) {
      await fetch(`${worker.url}/v1/products`, {
        method: "POST",
        headers: apiHeaders,
        body: JSON.stringify({ products: products.slice(i, i + 1000) }),
      });
    }
    const accounts: string[] = [];
    let batch: unknown[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const response = await fetch(`${worker.url}/v1/orders`, {
        method: "POST",
        headers: apiHeaders,
        body: JSON.stringify({ orders: batch }),
      });
      if (!response.ok) throw new Error(`seeding failed: ${response.status} ${await response.text()}`);
      batch = [];
    };
    const seedStart = performance.now();
    for (const customer of generateCustomers(seed)) {
      if (customer.truth.identifiers.account && accounts.length < 1000)
        accounts.push(customer.truth.identifiers.account);
      for (const order of customer.orders) batch.push(order);
      if (batch.length >= 500) await flush();
    }
    await flush();
    console.log(`seeded ${customers} customers in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
    const fit = await fetch(`${worker.url}/v1/admin/jobs/nightly?wait=1`, {
      method: "POST",
      headers: { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` },
    });
    console.log(`nightly job: ${fit.status} ${(await fit.text()).slice(0, 300)}`);

    const tokens = await Promise.all(
      accounts.map((account) => signShopperToken(account, testSecrets.SHOPPER_TOKEN_SECRET, 3600, new Date())),
    );
    const admin = { Authorization: `Bearer ${testSecrets.PATRON_ADMIN_KEY}` };
    // Warm both routes (isolate caches for catalog, models and rules) before measuring.
    for (let i = 0; i < 20; i++) {
      await (
        await fetch(`${worker.url}/v1/recommendations`, {
          headers: { Authorization: `Bearer ${tokens[i % tokens.length]}` },
        })
      ).arrayBuffer();
      await (await fetch(`${worker.url}/v1/customers/c_missing`, { headers: admin })).arrayBuffer();
    }
    // Alternate the two routes over several rounds and keep each route's median round, so a burst of
    // load from elsewhere on the machine does not land on one route only.
    const rounds = 3;
    const baselineRounds: LoadResult[] = [];
    const recsRounds: LoadResult[] = [];
    for (let round = 0; round < rounds; round++) {
      baselineRounds.push(
        await load(
          requests,
          connections,
          () => fetch(`${worker.url}/v1/customers/c_missing_${Math.random()}`, { headers: admin }),
          404,
        ),
      );
      recsRounds.push(
        await load(requests, connections, (i) =>
          fetch(`${worker.url}/v1/recommendations?limit=8&categories=4`, {
            headers: { Authorization: `Bearer ${tokens[i % tokens.length]}` },
          }),
        ),
      );
    }
    const baseline = medianRound(baselineRounds);
    const recs = medianRound(recsRounds);
    console.log(
      `customers ${customers}; ${rounds} alternating rounds of ${requests} requests per route (median round); ${connections} connections; ${tokens.length} distinct shoppers`,
    );
    console.log(`baseline single-row D1 read: ${fmt(baseline)}`);
    console.log(`GET /v1/recommendations:     ${fmt(recs)}`);
    console.log(
      `ratio recommendations / baseline: throughput ${(recs.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)}, p50 ${(recs.p50 / baseline.p50).toFixed(2)}x`,
    );
  } finally {
    await worker.stop();
  }
}
