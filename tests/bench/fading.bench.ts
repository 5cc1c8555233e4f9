// `npm run bench -- fading [seed=1] [customersPerScenario=5000]`: does the product's lifecycle stage
// (fading or lapsed) find customers who have truly stopped buying? Six simulated bases with known
// dropout (cli/evaluate/fading.ts), each scored by the product next to a 90-day rule, BG/NBD
// P(alive) < 0.5, an oracle that knows each customer's true parameters and a population oracle that
// knows only the world's true population laws (the best a purchase history can tell); the cadence's
// interval bias; and ROC AUCs on the CDNOW holdout. Prints tables, writes tests/artifacts/fading.json. Never asserts anything.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  type DetectionScore,
  defaultFadingOptions,
  evaluateCdnowHoldout,
  evaluateScenario,
  fadingThreshold,
  repeatRules,
  ruleLabels,
  type ScenarioReport,
  type Spread,
  scenarioNames,
  simulateScenario,
} from "../../cli/evaluate/fading.ts";
import { lifecycleStages } from "../../worker/core/vocabulary.ts";

const cdnowPath = path.join(import.meta.dirname, "../fixtures/cdnow/cdnowElog.csv");
const artifactPath = path.join(import.meta.dirname, "../artifacts/fading.json");

/** Columns padded to their widest cell: the first left-aligned, the rest right-aligned. */
function printTable(headers: readonly string[], rows: readonly (readonly string[])[]) {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join("  ");
  console.log(line(headers));
  console.log(widths.map((width) => "-".repeat(width)).join("  "));
  for (const row of rows) console.log(line(row));
}

const fixed = (value: number, digits = 3) => (Number.isFinite(value) ? value.toFixed(digits) : "—");
const percent = (value: number) => (Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "—");
const signed = (value: number) => (Number.isFinite(value) ? `${value >= 0 ? "+" : ""}${value.toFixed(3)}` : "—");
const prf = (score: DetectionScore) => [fixed(score.precision), fixed(score.recall), fixed(score.f1)];
const spread = (s: Spread) => [String(s.count), fixed(s.p10, 2), fixed(s.median, 2), fixed(s.p90, 2)];

function printScenarios(reports: readonly ScenarioReport[], scenarioMs: Record<string, number>) {
  console.log("\nScenarios (evaluated at the end of the window; 'dead' = stopped buying before then):");
  for (const report of reports) console.log(`  ${report.scenario.padEnd(8)} ${report.description}`);
  console.log("");
  printTable(
    ["scenario", "customers", "window d", "repeat", "dead", "one-time", "dead", "ms"],
    reports.map((report) => [
      report.scenario,
      String(report.customers),
      String(report.windowDays),
      String(report.repeat.customers),
      percent(report.repeat.deadShare),
      String(report.oneTime.customers),
      percent(report.oneTime.deadShare),
      scenarioMs[report.scenario]!.toFixed(0),
    ]),
  );
  console.log("\nFits: the product's (BG/NBD with each customer's regularity) and the classic BG/NBD baseline's:");
  const parameters = (fit: ScenarioReport["models"]["classic"]) => [
    fixed(fit.r),
    fixed(fit.alphaDays, 1),
    fixed(fit.a),
    fixed(fit.b),
  ];
  printTable(
    [
      "scenario",
      "source",
      "dropout",
      "r",
      "α (d)",
      "a",
      "b",
      "fading line",
      "gap CV²",
      "prior d",
      "classic r",
      "α (d)",
      "a",
      "b",
    ],
    reports.map((report) => [
      report.scenario,
      report.models.source,
      report.models.productDropout,
      ...parameters(report.models.product),
      fixed(report.models.fadingLine),
      fixed(report.models.regularityCv2),
      fixed(report.models.cadencePriorDays, 1),
      ...parameters(report.models.classic),
    ]),
  );
}

function printRepeatDetection(reports: readonly ScenarioReport[]) {
  console.log(`\nRepeat buyers (≥ 2 purchase days): detecting the dead (oracle threshold ${fadingThreshold}):`);
  printTable(
    ["scenario", "rule", "flagged", "precision", "recall", "F1"],
    reports.flatMap((report) =>
      repeatRules.map((rule) => {
        const score = report.repeat.rules[rule];
        return [report.scenario, ruleLabels[rule], percent(score.flaggedShare), ...prf(score)];
      }),
    ),
  );
  console.log("\nRepeat buyers, F1 gaps:");
  printTable(
    [
      "scenario",
      "product F1",
      "best baseline",
      "its F1",
      "product − best",
      "oracle F1",
      "oracle − product",
      "population oracle F1",
      "pop. − product",
    ],
    reports.map((report) => [
      report.scenario,
      fixed(report.repeat.rules.product.f1),
      ruleLabels[report.repeat.bestBaseline],
      fixed(report.repeat.rules[report.repeat.bestBaseline].f1),
      signed(report.repeat.productMinusBestBaselineF1),
      fixed(report.repeat.rules.oracle.f1),
      signed(report.repeat.oracleMinusProductF1),
      fixed(report.repeat.rules.population.f1),
      signed(report.repeat.populationOracleMinusProductF1),
    ]),
  );
  console.log(
    "\nRepeat buyers, ROC AUC of 1 − P(alive) for the dead (the ranking, whatever the threshold; population oracle: the Bayes posterior under the world's true population laws, from the purchase history alone):",
  );
  printTable(
    ["scenario", "product", "classic BG/NBD", "population oracle", "oracle"],
    reports.map((report) => [
      report.scenario,
      fixed(report.repeat.auc.product),
      fixed(report.repeat.auc.bgnbd),
      fixed(report.repeat.auc.population),
      fixed(report.repeat.auc.oracle),
    ]),
  );
}

function printStages(reports: readonly ScenarioReport[], group: "repeat" | "oneTime") {
  const cell = (counts: { alive: number; dead: number } | undefined) =>
    counts ? `${counts.alive} / ${counts.dead}` : "0 / 0";
  printTable(
    ["scenario", ...lifecycleStages.map((stage) => `${stage} alive/dead`)],
    reports.map((report) => [report.scenario, ...lifecycleStages.map((stage) => cell(report[group].stages[stage]))]),
  );
}

function printOneTime(reports: readonly ScenarioReport[]) {
  console.log("\nOne-time buyers (1 purchase day): product stage fading/lapsed, > 90 days since the purchase, oracle:");
  printTable(
    ["scenario", "customers", "dead", "product P", "R", "F1", "90 d P", "R", "F1", "oracle P", "R", "F1"],
    reports.map((report) => [
      report.scenario,
      String(report.oneTime.customers),
      percent(report.oneTime.deadShare),
      ...prf(report.oneTime.rules.product),
      ...prf(report.oneTime.rules.days90),
      ...prf(report.oneTime.rules.oracle),
    ]),
  );
}

function printCadence(reports: readonly ScenarioReport[]) {
  console.log("\nCadence bias, alive repeat customers: expectedIntervalDays ÷ true mean gap (1/λ):");
  printTable(
    [
      "scenario",
      "x = 1: n",
      "p10",
      "median",
      "p90",
      "x ≥ 5: n",
      "p10",
      "median",
      "p90",
      "alive repeat overdue ≥ 3",
      "all alive overdue ≥ 3",
    ],
    reports.map((report) => [
      report.scenario,
      ...spread(report.cadence.oneRepeat),
      ...spread(report.cadence.fiveOrMoreRepeats),
      percent(report.cadence.aliveRepeatOverdue3Share),
      percent(report.cadence.aliveOverdue3Share),
    ]),
  );
}

export default async function fadingBench(args: string[]) {
  const started = performance.now();
  const options = {
    seed: Number(args[0] ?? defaultFadingOptions.seed),
    customersPerScenario: Number(args[1] ?? defaultFadingOptions.customersPerScenario),
  };
  console.log(`seed ${options.seed}, ${options.customersPerScenario} customers per scenario`);
  const scenarioMs: Record<string, number> = {};
  const reports = scenarioNames.map((scenario) => {
    const scenarioStarted = performance.now();
    const report = evaluateScenario(simulateScenario(scenario, options));
    scenarioMs[scenario] = performance.now() - scenarioStarted;
    return report;
  });
  printScenarios(reports, scenarioMs);
  printRepeatDetection(reports);
  console.log("\nRepeat buyers by product stage (alive / dead):");
  printStages(reports, "repeat");
  printOneTime(reports);
  console.log("\nOne-time buyers by product stage (alive / dead):");
  printStages(reports, "oneTime");
  printCadence(reports);

  const cdnowStarted = performance.now();
  const cdnow = evaluateCdnowHoldout(readFileSync(cdnowPath, "utf8"));
  const cdnowMs = performance.now() - cdnowStarted;
  console.log(
    `\nCDNOW holdout: calibration to 1997-09-30, truth = no purchase 1997-10-01..1998-06-30; ${cdnow.customers} customers (no purchase ${percent(cdnow.noPurchaseShare)}), ${cdnow.repeatBuyers} repeat buyers (no purchase ${percent(cdnow.noPurchaseShareRepeat)}); ${cdnowMs.toFixed(0)} ms`,
  );
  console.log("ROC AUC for predicting no purchase (Mann–Whitney, ties 0.5; 0.5 = a coin):");
  printTable(
    ["score (higher = more likely none)", "all customers", "repeat buyers"],
    cdnow.aucs.map((auc) => [auc.score, fixed(auc.allCustomers), fixed(auc.repeatBuyers)]),
  );

  mkdirSync(path.dirname(artifactPath), { recursive: true });
  writeFileSync(artifactPath, `${JSON.stringify({ options, fadingThreshold, scenarios: reports, cdnow }, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), artifactPath)}`);
  console.log(`wall time ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
