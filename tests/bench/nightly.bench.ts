// The nightly job's steps at one database size: the figures docs/scaling.md uses for the step and CPU
// arithmetic at ten million customers. Seeds `--customers` generated customers into a fresh local D1 as
// the scale bench does, then runs the job's step functions in-process on that database (through
// wrangler's platform proxy) and times each: wall time and this process's CPU time, which leaves out
// the time spent inside SQLite, as a Worker's CPU limit does. Scores every customer in pages of
// `--page-size`, then scores again as of a day later with no new orders, and prints the rows each
// scoring run wrote (D1's meta.rows_written) and the largest page result (persisted by Workflows).
// Usage: npm run bench -- nightly [--customers 100000] [--page-size 5000] [--out file.json]
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { drizzle } from "drizzle-orm/d1";
import * as schema from "../../db/schema.ts";
import type { PopulationModels } from "../../worker/core/profile/population-models.ts";
import type { PopulationStats } from "../../worker/core/ranking/population.ts";
import type { Db } from "../../worker/env.ts";
import {
  copurchaseStep,
  finishRunStep,
  fitCustomerModelsStep,
  fitPopulationStep,
  scorePageStep,
  startRunStep,
} from "../../worker/jobs/nightly.repo.ts";
import { modelsById } from "../../worker/models/models.repo.ts";
import { freshLocalD1 } from "./local-d1.ts";
import { meteredD1 } from "./metered-d1.ts";
import { seedCustomers } from "./scale.bench.ts";

const root = path.resolve(import.meta.dirname, "../..");
const day = 86_400_000;

interface Timed<T> {
  result: T;
  wallMs: number;
  cpuMs: number;
}

async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const used = process.cpuUsage(cpu);
  return { result, wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
}

function option(args: string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
}

/** One scoring run: every page, timed, with the rows the pages wrote. */
async function scoringRun(d1: D1Database, meter: { rowsWritten: number }, runId: string, asOf: Date, pageSize: number) {
  const db = drizzle(d1, { schema }) as unknown as Db;
  const fit = await timed(() => fitCustomerModelsStep(db, asOf));
  const population = await timed(() => fitPopulationStep(db, asOf));
  const copurchase = await timed(() => copurchaseStep(db, asOf));
  const models = await modelsById<PopulationModels>(db, fit.result.id);
  const stats = await modelsById<PopulationStats>(db, population.result.id);
  await startRunStep(db, runId, asOf);
  meter.rowsWritten = 0;
  const pages: { wallMs: number; cpuMs: number; resultBytes: number }[] = [];
  let cursor = "";
  let scored = 0;
  for (;;) {
    const page = await timed(() =>
      scorePageStep(db, models, cursor, pageSize, runId, asOf, { population: stats, scoredBefore: scored }),
    );
    pages.push({ wallMs: page.wallMs, cpuMs: page.cpuMs, resultBytes: JSON.stringify(page.result).length });
    scored += page.result.scored;
    if (!page.result.nextCursor) break;
    cursor = page.result.nextCursor;
  }
  const rowsWritten = meter.rowsWritten;
  // Finished, as the Workflow finishes a run: the next run's row can then be the running one.
  await finishRunStep(db, runId, { scored }, new Date());
  const rewritten = await d1
    .prepare("SELECT count(*) AS n FROM customer_scores WHERE run_id = ?")
    .bind(runId)
    .first<{ n: number }>();
  const full = pages.filter((_, index) => index < pages.length - 1 || pages.length === 1);
  const stepFigure = (step: Timed<unknown>) => ({ wallMs: step.wallMs, cpuMs: step.cpuMs });
  return {
    fitCustomerModels: stepFigure(fit),
    fitRankingStatistics: stepFigure(population),
    copurchase: stepFigure(copurchase),
    scored,
    customersWritten: rewritten?.n ?? 0,
    rowsWritten,
    pages: pages.length,
    page: {
      meanWallMs: full.reduce((sum, p) => sum + p.wallMs, 0) / full.length,
      maxWallMs: Math.max(...pages.map((p) => p.wallMs)),
      meanCpuMs: full.reduce((sum, p) => sum + p.cpuMs, 0) / full.length,
      maxCpuMs: Math.max(...pages.map((p) => p.cpuMs)),
      maxResultBytes: Math.max(...pages.map((p) => p.resultBytes)),
    },
  };
}

const ms = (value: number) => `${value.toFixed(0)} ms`;

export default async function nightlyBench(args: string[]) {
  const customers = Number(option(args, "customers") ?? 100_000);
  const pageSize = Number(option(args, "page-size") ?? 5_000);
  const out = path.resolve(option(args, "out") ?? path.join(root, ".wrangler/bench/nightly.json"));
  if (!Number.isInteger(customers) || customers <= 0) throw new Error("--customers takes a positive count");
  if (!Number.isInteger(pageSize) || pageSize <= 0) throw new Error("--page-size takes a positive count");
  const { persistDir, proxy } = await freshLocalD1("nightly");
  try {
    try {
      console.log(`seeding ${customers} customers`);
      const seeded = await seedCustomers(proxy.env.DB, customers);
      console.log(`seeded ${seeded.customers} customers, ${seeded.orders} orders, ${seeded.lines} lines`);
      const { binding, meter } = meteredD1(proxy.env.DB);
      const asOf = new Date();
      const runs = {
        first: await scoringRun(binding, meter, "bench-first", asOf, pageSize),
        nextDay: await scoringRun(binding, meter, "bench-next-day", new Date(asOf.getTime() + day), pageSize),
      };
      for (const [name, run] of Object.entries(runs)) {
        console.log(
          `${name}: fit ${ms(run.fitCustomerModels.wallMs)} (cpu ${ms(run.fitCustomerModels.cpuMs)}), ranking statistics ${ms(run.fitRankingStatistics.wallMs)} (cpu ${ms(run.fitRankingStatistics.cpuMs)}), co-purchase ${ms(run.copurchase.wallMs)} (cpu ${ms(run.copurchase.cpuMs)})`,
        );
        console.log(
          `  ${run.pages} pages of ${pageSize}: per page mean ${ms(run.page.meanWallMs)} wall / ${ms(run.page.meanCpuMs)} cpu, max ${ms(run.page.maxWallMs)} / ${ms(run.page.maxCpuMs)}; largest page result ${run.page.maxResultBytes} bytes`,
        );
        console.log(
          `  scored ${run.scored}, customers written ${run.customersWritten}, rows written ${run.rowsWritten} (${(run.rowsWritten / run.scored).toFixed(2)} per customer)`,
        );
      }
      mkdirSync(path.dirname(out), { recursive: true });
      writeFileSync(
        out,
        `${JSON.stringify({ measuredAt: new Date().toISOString(), customers, pageSize, seeded, runs }, null, 2)}\n`,
      );
      console.log(`written ${out}`);
    } finally {
      await proxy.dispose();
    }
  } finally {
    rmSync(persistDir, { recursive: true, force: true });
  }
}
