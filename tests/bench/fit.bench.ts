// `npm run bench -- fit`: BG/NBD + Gamma-Gamma fit time on the CDNOW sample (2,357 customers) and the
// full cohort (23,570), and scoring throughput (P(alive) + 12-month CLV per customer). Each figure is
// printed next to a baseline measured in the same run on the same customers: one log-likelihood
// evaluation for the fits, and log-likelihood evaluations per second for scoring. Never asserts time.
import { readFileSync } from "node:fs";
import path from "node:path";
import { bgnbdLogLikelihood, fitBgNbd, prepareCustomers, probabilityAlive } from "../../worker/core/models/bg-nbd.ts";
import { customerLifetimeValue, defaultClvOptions } from "../../worker/core/models/clv.ts";
import { fitGammaGamma } from "../../worker/core/models/gamma-gamma.ts";
import { type PurchaseEvent, parseDay, summarizeEvents } from "../../worker/core/models/summary.ts";

const dataDir = path.join(import.meta.dirname, "../../../shared/data/cdnow");
const cutoffDay = parseDay("1997-09-30")!;

function sampleEvents(): PurchaseEvent[] {
  const lines = readFileSync(path.join(dataDir, "cdnowElog.csv"), "utf8").trim().split(/\r?\n/).slice(1);
  return lines.map((line) => {
    const [customer, , date, , sales] = line.split(",");
    return { customer: customer!, day: parseDay(date!)!, amount: Number(sales) };
  });
}

function masterEvents(): PurchaseEvent[] {
  // The first line is a header (customer_id date number_of_cds dollar_value).
  const lines = readFileSync(path.join(dataDir, "CDNOW_master.txt"), "utf8").trim().split(/\r?\n/).slice(1);
  return lines.map((line) => {
    const [customer, date, , dollars] = line.trim().split(/\s+/);
    return { customer: customer!, day: parseDay(date!)!, amount: Number(dollars) };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function timeMs(work: () => void, repeats: number): number {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    work();
    times.push(performance.now() - started);
  }
  return median(times);
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
  // Baseline: one log-likelihood evaluation over the same customers, unprepared (as a caller would).
  const logLikelihoodMs = timeMs(() => bgnbdLogLikelihood(bgnbd, customers), 30);
  const prepared = prepareCustomers(customers);
  const preparedMs = timeMs(() => bgnbdLogLikelihood(bgnbd, prepared), 30);
  console.log(
    `${label}: ${customers.length} customers, ${spend.length} with repeat spend; r ${bgnbd.r.toFixed(4)} alpha ${bgnbd.alpha.toFixed(4)} a ${bgnbd.a.toFixed(4)} b ${bgnbd.b.toFixed(4)} LL ${bgnbd.logLikelihood.toFixed(2)} (${bgnbd.iterations} iterations); p ${gammaGamma.p.toFixed(3)} q ${gammaGamma.q.toFixed(3)} gamma ${gammaGamma.gamma.toFixed(3)}`,
  );
  console.log(
    `  fit (BG/NBD + Gamma-Gamma), median of ${fitRepeats}: ${fitMs.toFixed(1)} ms | baseline: one LL evaluation ${logLikelihoodMs.toFixed(2)} ms (prepared ${preparedMs.toFixed(2)} ms) | ratio fit / LL = ${(fitMs / logLikelihoodMs).toFixed(0)}x`,
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
  const scoredPerSecond = (customers.length / scoreMs) * 1000;
  const logLikelihoodPerSecond = (customers.length / logLikelihoodMs) * 1000;
  console.log(
    `  scoring P(alive) + ${defaultClvOptions.horizonMonths}-month CLV: ${Math.round(scoredPerSecond).toLocaleString("en-US")} customers/s | baseline: LL evaluation ${Math.round(logLikelihoodPerSecond).toLocaleString("en-US")} customers/s | ratio ${(logLikelihoodPerSecond / scoredPerSecond).toFixed(1)}x slower per customer (checksum ${checksum.toFixed(0)})`,
  );
}

export default async function (_args: string[]) {
  benchDataset("CDNOW sample", sampleEvents(), 5);
  benchDataset("CDNOW master", masterEvents(), 3);
}
