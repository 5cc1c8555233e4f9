// `npm run bench -- fit`: BG/NBD + Gamma-Gamma fit time on the CDNOW sample (2,357 customers) and the
// full cohort (23,570), and scoring throughput (P(alive) + 12-month CLV per customer). Each figure is
// printed next to a baseline measured in the same run on the same customers: one log-likelihood
// evaluation for the fits, and log-likelihood evaluations per second for scoring. Never asserts time.

import { readFileSync } from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { medianOf } from "../../worker/core/math/quantile.ts";
import { bgnbdLogLikelihood, fitBgNbd, prepareCustomers, probabilityAlive } from "../../worker/core/models/bg-nbd.ts";
import { customerLifetimeValue, defaultClvOptions } from "../../worker/core/models/clv.ts";
import { fitGammaGamma } from "../../worker/core/models/gamma-gamma.ts";
import { type PurchaseEvent, parseDay, summarizeEvents } from "../../worker/core/models/summary.ts";

const dataDir = path.join(import.meta.dirname, "../fixtures/cdnow");
const cutoffDay = parseDay("1997-09-30")!;

function sampleEvents(): PurchaseEvent[] {
  const lines = readFileSync(path.join(dataDir, "cdnowElog.csv"), "utf8").trim().split(/\r?\n/).slice(1);
  return lines.map((line) => {
    const [customer, , date, , sales] = line.split(",");
    return { customer: customer!, day: parseDay(date!)!, amount: Number(sales) };
  });
}

function masterEvents(): PurchaseEvent[] {
  // Gzipped in the repository. The first line is a header (customer_id date number_of_cds dollar_value).
  const text = gunzipSync(readFileSync(path.join(dataDir, "CDNOW_master.txt.gz"))).toString("utf8");
  const lines = text.trim().split(/\r?\n/).slice(1);
  return lines.map((line) => {
    const [customer, date, , dollars] = line.trim().split(/\s+/);
    return { customer: customer!, day: parseDay(date!)!, amount: Number(dollars) };
  });
}

function timeMs(work: () => void, repeats: number): number {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    work();
    times.push(performance.now() - started);
  }
  return medianOf(times);
}

function benchDataset(label: string, events: PurchaseEvent[], fitRepeats: number) {
  const customers = summarizeEvents(events, { cutoffDay, unit: "week" });
  const spend = customers
    .filter((customer) => customer.monetaryCount > 0)
    .map((customer) => ({ count: customer.monetaryCount, meanValue: customer.monetaryMean }));
  let bgnbd = fitBgNbd(customers);
  let gammaGamma = fitGammaGamma(spend);
  const fitMs = timeMs(() => {
    bgnbd = fitBgNbd(customers);
    gammaGamma = fitGammaGamma(spend);
  }, fitRepeats);
  // Baseline: one log-likelihood evaluation over the same customers, packed as the optimiser sees them
  // (the unit of work a fit repeats); the unpacked call, which also packs, is shown beside it.
  const prepared = prepareCustomers(customers);
  const logLikelihoodMs = timeMs(() => bgnbdLogLikelihood(bgnbd, prepared), 30);
  const unpreparedMs = timeMs(() => bgnbdLogLikelihood(bgnbd, customers), 10);
  console.log(
    `${label}: ${customers.length} customers, ${spend.length} with repeat spend; r ${bgnbd.r.toFixed(4)} alpha ${bgnbd.alpha.toFixed(4)} a ${bgnbd.a.toFixed(4)} b ${bgnbd.b.toFixed(4)} LL ${bgnbd.logLikelihood.toFixed(2)} (${bgnbd.iterations} iterations); p ${gammaGamma.p.toFixed(3)} q ${gammaGamma.q.toFixed(3)} gamma ${gammaGamma.gamma.toFixed(3)}`,
  );
  console.log(
    `  fit (BG/NBD + Gamma-Gamma), median of ${fitRepeats}: ${fitMs.toFixed(1)} ms | baseline: one LL evaluation ${logLikelihoodMs.toFixed(2)} ms (${unpreparedMs.toFixed(2)} ms including packing) | ratio fit / LL = ${(fitMs / logLikelihoodMs).toFixed(0)}x`,
  );

  // Scoring: what the request path does per customer.
  const models = { bgnbd, gammaGamma };
  const scoring = customers.map((customer) => ({
    ...customer,
    count: customer.monetaryCount,
    meanValue: customer.monetaryMean,
  }));
  let checksum = 0;
  const scoreMs = timeMs(() => {
    for (const customer of scoring) {
      checksum += probabilityAlive(bgnbd, customer) + customerLifetimeValue(models, customer, defaultClvOptions).clv;
    }
  }, 3);
  // Baselines: P(alive) alone (one closed form per customer, no 2F1), and the log-likelihood over the
  // same customers without packing them (one pass of logs and Γ terms per customer).
  const aliveMs = timeMs(() => {
    for (const customer of scoring) checksum += probabilityAlive(bgnbd, customer);
  }, 3);
  const perSecond = (ms: number) => Math.round((customers.length / ms) * 1000).toLocaleString("en-US");
  console.log(
    `  scoring P(alive) + ${defaultClvOptions.horizonMonths}-month CLV: ${perSecond(scoreMs)} customers/s | baselines: P(alive) alone ${perSecond(aliveMs)} customers/s (ratio ${(scoreMs / aliveMs).toFixed(1)}x), LL evaluation incl. packing ${perSecond(unpreparedMs)} customers/s (ratio ${(scoreMs / unpreparedMs).toFixed(1)}x) (checksum ${checksum.toFixed(0)})`,
  );
}

export default async function (_args: string[]) {
  benchDataset("CDNOW sample", sampleEvents(), 5);
  benchDataset("CDNOW master", masterEvents(), 3);
}
