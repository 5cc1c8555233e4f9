// Models: the fits in force (GET /v1/admin/models: the BG/NBD or its MBG/NBD variant, named as the API
// says which is in force, and Gamma-Gamma parameters, sample size, log-likelihood, fit date, fallbacks,
// value-tier thresholds), and the nightly job: the latest run whoever started it (GET
// /v1/admin/jobs/nightly?limit=1: the cron trigger's too), and a button to start one and watch its
// progress. No fit yet: the page says so and offers the button. Below, the last run's diagnostics
// (GET /v1/admin/models/diagnostics), named by the model they check: the tracking plot and the
// by-frequency comparison.
import { useEffect, useState } from "preact/hooks";
import { count, dateTime, day, money, moneyIn, percent, words } from "../api.ts";
import {
  finished,
  LineChart,
  type Loaded,
  Loading,
  type NightlyRun,
  PageHeader,
  ProblemNote,
  RunNightly,
  TableWrap,
  useData,
} from "../ui.tsx";

type DiagnosticsView =
  | { status: "unavailable"; reason: string; message: string; computedAt: string; sampledCustomers: number }
  | {
      status: "ready";
      computedAt: string;
      sampledCustomers: number;
      /** The model checked: the BG/NBD or its MBG/NBD variant. */
      model: "bgnbd" | "mbgnbd";
      /** Whether each customer's purchase regularity was used, as in the live fit. */
      regularity: boolean;
      /** firstPurchase: the first purchase day the fit saw (absent in diagnostics stored before it). */
      calibration: { from: string; to: string; firstPurchase?: string };
      holdout: { from: string; to: string };
      periodDays: number;
      customers: number;
      tracking: {
        from: string;
        to: string;
        phase: "calibration" | "holdout";
        actual: number;
        expected: number;
        cumulativeActual: number;
        cumulativeExpected: number;
      }[];
      byFrequency: { purchases: string; customers: number; actualMean: number; expectedMean: number }[];
      totals: {
        calibration: { actual: number; expected: number };
        holdout: { actual: number; expected: number; conditionalExpected: number };
      };
    };

interface Models {
  customer: {
    fittedAt: string;
    sampleSize: number;
    source: string;
    fallbacks: { model: string; reason: string; estimate: string }[];
    excluded: Record<string, number>;
    timeUnitDays: number;
    bgnbd: {
      r: number;
      alpha: number;
      a: number;
      b: number;
      /** True when the MBG/NBD variant is in force: dropout possible right after the first purchase too. */
      dropoutAtFirstPurchase?: boolean;
      logLikelihood: number | null;
      converged: boolean | null;
    };
    gammaGamma: { p: number; q: number; gamma: number; converged: boolean | null };
    valueTiers: Record<string, number>;
    /** No tier above low under it: a tenth of a typical purchase day's value (absent in older fits). */
    valueTierFloor?: number;
    discountShare: number;
    cadencePriorDays: number;
    secondPurchase: { sample: number; returnedShare: number };
  };
  population: { fittedAt: string; customers: number; categories: number } | null;
}

const round = (value: number | null | undefined, digits = 4) =>
  value == null || !Number.isFinite(value) ? "–" : String(Math.round(value * 10 ** digits) / 10 ** digits);

/** A run as GET /v1/admin/jobs/nightly lists it; `detail` is a finished run's result. */
interface RunView extends NightlyRun {
  asOf: string | null;
  detail: { skipped?: number; skippedReasons?: Record<string, number> } | null;
}

export function ModelsPage() {
  const models = useData<Models>("/v1/admin/models");
  const runs = useData<{ runs: RunView[] }>("/v1/admin/jobs/nightly?limit=1");
  // Runs finished from this page: the diagnostics are the run's too, so they are read again with the fits.
  const [finished, setFinished] = useState(0);
  const done = () => {
    models.reload();
    setFinished((n) => n + 1);
  };
  const noFit = models.problem?.status === 404;
  return (
    <section>
      <PageHeader title="Models">
        <p class="muted">
          The nightly job fits the population models, then scores every customer with them. It runs every night on its
          own; run it now after a large import.
        </p>
      </PageHeader>
      {models.loading && !models.data && !models.problem ? (
        <Loading what="the models" />
      ) : noFit ? (
        <div class="empty">
          <h2>No model fit yet</h2>
          <p>No model fit yet: run the nightly job. It fits the models on the orders imported so far.</p>
          <LatestRun runs={runs} />
          <RunNightly onDone={done} onStart={runs.reload} onEnd={runs.reload} />
        </div>
      ) : models.problem ? (
        <ProblemNote problem={models.problem} />
      ) : models.data ? (
        <>
          <Fits models={models.data} />
          <Diagnostics key={finished} />
          <h2>Run the nightly job</h2>
          <LatestRun runs={runs} />
          <RunNightly onDone={done} onStart={runs.reload} onEnd={runs.reload} label="Run the nightly job now" />
        </>
      ) : null}
    </section>
  );
}

/**
 * The latest nightly run, whoever started it: its status, when it started and finished, customers
 * processed, its error, and the customers it could not score by reason. Read again every few seconds
 * while it runs.
 */
function LatestRun({ runs }: { runs: Loaded<{ runs: RunView[] }> }) {
  const run = runs.data?.runs[0];
  const { reload } = runs;
  useEffect(() => {
    if (!run || finished.includes(run.status)) return;
    const timer = setTimeout(reload, 5000);
    return () => clearTimeout(timer);
  }, [run, reload]);
  if (runs.problem) return <ProblemNote problem={runs.problem} />;
  if (!run) return runs.loading ? null : <p class="muted">No nightly run yet.</p>;
  const skipped = run.detail?.skipped ?? 0;
  const reasons = Object.entries(run.detail?.skippedReasons ?? {}).filter(([, n]) => n > 0);
  return (
    <section aria-labelledby="latest-run" class="latest-run">
      <p id="latest-run">
        Latest run <span class="small">{run.runId}</span>: <strong>{run.status}</strong>
      </p>
      <p class="muted small">
        Started {dateTime(run.startedAt)}
        {run.finishedAt ? `, finished ${dateTime(run.finishedAt)}` : ""}; {count(run.processed, "customer")} processed
        {run.asOf ? `; as of ${dateTime(run.asOf)}` : ""}.
      </p>
      {run.error && <p class="problem">Error: {run.error}</p>}
      {skipped > 0 && (
        <p class="small">
          {count(skipped, "customer")} skipped (they keep their previous score):{" "}
          {reasons.map(([reason, n]) => `${words(reason)} ${n.toLocaleString("en-US")}`).join(", ")}.
        </p>
      )}
    </section>
  );
}

/**
 * What the fitted parameters say about the customers, from the models' own means: a customer's purchase
 * rate varies as Gamma(r, α), with mean r/α a time unit; the chance of stopping after a purchase as
 * Beta(a, b), with mean a/(a + b); a customer's mean order value as Gamma-Gamma, around p·γ/(q − 1)
 * (for q > 1; Fader, Hardie & Lee 2005).
 */
function parametersMeaning(customer: Models["customer"]): string {
  const { r, alpha, a, b, dropoutAtFirstPurchase } = customer.bgnbd;
  const { p, q, gamma } = customer.gammaGamma;
  const days = customer.timeUnitDays;
  const perPeriod = (r / alpha).toLocaleString("en-US", { maximumSignificantDigits: 2 });
  const purchases = `Purchases: each customer has their own rate, on average ${perPeriod} purchases ${days === 1 ? "a day" : `every ${days} days`} (r/α)`;
  const stopping = `stopping: after ${dropoutAtFirstPurchase ? "each purchase, the first included" : "each repeat purchase"} a customer stops for good with a chance of ${percent(a / (a + b))} on average (a/(a + b))`;
  const value =
    q > 1
      ? `order value: each customer's typical order is worth ${moneyIn((p * gamma) / (q - 1))} on average (p·γ/(q − 1))`
      : "order value: q is 1 or less, so the mean of the customers' typical orders is not defined";
  return `${purchases}; ${stopping}; ${value}.`;
}

/** The purchase and dropout model in force, by name, and what sets it apart in one line. */
function dropoutModel(customer: Models["customer"]): { name: string; explanation: string } {
  // Both variants are fitted on the same orders and the likelier kept, unless the fit fell back to defaults.
  const fitted = customer.source === "fitted" && !customer.fallbacks.some((fallback) => fallback.model === "bgnbd");
  return customer.bgnbd.dropoutAtFirstPurchase
    ? {
        name: "MBG/NBD",
        explanation: `MBG/NBD: the BG/NBD variant in which a customer may also stop right after their first purchase, not only after a repeat purchase${fitted ? "; it fitted these orders better than the BG/NBD, so it is in force" : ""}.`,
      }
    : {
        name: "BG/NBD",
        explanation: `BG/NBD: a customer may stop only after a repeat purchase${fitted ? "; the MBG/NBD variant (stopping right after the first purchase too) did not fit these orders clearly better, so the BG/NBD is in force" : ""}.`,
      };
}

/** A fit's convergence; "–" when no optimizer ran (placeholders, or an estimate Fallbacks names). */
const convergedText = (converged: boolean | null) => (converged === null ? "–" : converged ? "yes" : "no");

function Fits({ models }: { models: Models }) {
  const { customer, population } = models;
  const model = dropoutModel(customer);
  // As the API's placeholderModels: too little history, or a purchase model fit that fell back.
  const placeholder =
    customer.source === "default" ||
    customer.fallbacks.some((fallback) => fallback.model === "bgnbd" && fallback.estimate === "default_parameters");
  return (
    <>
      {placeholder && (
        <p class="notice" role="note">
          <strong>Not fitted: these are placeholder parameters.</strong> The last run had too little history to fit the
          models ({count(customer.sampleSize, "customer")} in its sample), so every customer's CLV, tier, stage and
          P(alive) comes from defaults, not from this shop's orders, until a run fits.
        </p>
      )}
      <dl class="tiles">
        <div class="tile">
          <dt>Fitted</dt>
          <dd class="figure">{dateTime(customer.fittedAt)}</dd>
          <dd class="muted small">{placeholder ? "placeholders: not fitted" : "fitted on this data"}</dd>
        </div>
        <div class="tile">
          <dt>Sample</dt>
          <dd class="figure">{customer.sampleSize.toLocaleString("en-US")}</dd>
          <dd class="muted small">customers in the fit</dd>
        </div>
        <div class="tile">
          <dt>Log-likelihood</dt>
          <dd class="figure">
            {customer.bgnbd.logLikelihood == null
              ? "–"
              : customer.bgnbd.logLikelihood.toLocaleString("en-US", { maximumFractionDigits: 1 })}
          </dd>
          <dd class="muted small">{model.name} fit</dd>
        </div>
        <div class="tile">
          <dt>Come back for a second purchase</dt>
          <dd class="figure">
            {customer.secondPurchase.sample > 0 ? percent(customer.secondPurchase.returnedShare) : "–"}
          </dd>
          <dd class="muted small">
            {customer.secondPurchase.sample > 0
              ? `estimated from the times to a second purchase of ${count(customer.secondPurchase.sample, "customer")} (Kaplan–Meier): those still within the longest wait seen count as may-return, so more than have come back so far`
              : "no customer's first purchase yet to estimate it from"}
          </dd>
        </div>
      </dl>
      <p class="muted" id="dropout-model">
        {model.explanation}
      </p>
      <p class="muted" id="parameters-meaning">
        {parametersMeaning(customer)}
      </p>
      <div class="columns">
        <TableWrap label={model.name}>
          <table aria-describedby="dropout-model">
            <caption>
              {model.name} (purchase frequency and dropout; time unit {customer.timeUnitDays} days)
            </caption>
            <tbody>
              {(["r", "alpha", "a", "b"] as const).map((name) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>{round(customer.bgnbd[name])}</td>
                </tr>
              ))}
              <tr>
                <th scope="row">converged</th>
                <td>{convergedText(customer.bgnbd.converged)}</td>
              </tr>
            </tbody>
          </table>
        </TableWrap>
        <TableWrap label="Gamma-Gamma">
          <table>
            <caption>Gamma-Gamma (order value)</caption>
            <tbody>
              {(["p", "q", "gamma"] as const).map((name) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>{round(customer.gammaGamma[name])}</td>
                </tr>
              ))}
              <tr>
                <th scope="row">converged</th>
                <td>{convergedText(customer.gammaGamma.converged)}</td>
              </tr>
            </tbody>
          </table>
        </TableWrap>
        <TableWrap label="Value tiers">
          <table>
            <caption>Value tiers (12-month CLV from)</caption>
            <tbody>
              {Object.entries(customer.valueTiers).map(([tier, threshold]) => (
                <tr key={tier}>
                  <th scope="row">{tier}</th>
                  <td>{money(threshold)}</td>
                </tr>
              ))}
              {customer.valueTierFloor === undefined ? null : (
                <tr>
                  <th scope="row" title="A tenth of the median customer's mean purchase-day value">
                    floor (none above low under it)
                  </th>
                  <td>{money(customer.valueTierFloor)}</td>
                </tr>
              )}
            </tbody>
          </table>
        </TableWrap>
      </div>
      <h2>Fallbacks</h2>
      {placeholder ? (
        <p class="muted">Not fitted: the placeholder parameters above stand in for every model.</p>
      ) : customer.fallbacks.length === 0 ? (
        <p class="muted">None: every fit was used as fitted.</p>
      ) : (
        <ul>
          {customer.fallbacks.map((fallback) => (
            <li key={fallback.model}>
              {fallback.model}: {fallback.reason.replace(/_/g, " ")}, replaced by {fallback.estimate.replace(/_/g, " ")}
            </li>
          ))}
        </ul>
      )}
      {population && (
        <p class="muted">
          Category statistics: {count(population.customers, "customer")} over{" "}
          {count(population.categories, "category", "categories")}, fitted {dateTime(population.fittedAt)}.
        </p>
      )}
    </>
  );
}

/** A count of purchases: whole as counted, or, for a forecast, always to one decimal ("1,549.0", "2,298.3"). */
const figure = (value: number) => value.toLocaleString("en-US", { maximumFractionDigits: 1 });
const forecast = (value: number) =>
  value.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** Does the model forecast what people then bought? The last nightly run's calibration/holdout check. */
function Diagnostics() {
  const diagnostics = useData<DiagnosticsView>("/v1/admin/models/diagnostics");
  return (
    <section aria-labelledby="diagnostics-title">
      <h2 id="diagnostics-title">Diagnostics: forecast against what customers then bought</h2>
      {diagnostics.loading && !diagnostics.data && !diagnostics.problem ? (
        <Loading what="the diagnostics" />
      ) : diagnostics.problem?.status === 404 ? (
        <div class="empty">
          <p>
            No diagnostics yet: they are computed by the nightly job. Run it below; the check refits the model in force
            on the older orders and compares its forecast with the newer ones.
          </p>
        </div>
      ) : diagnostics.problem ? (
        <ProblemNote problem={diagnostics.problem} />
      ) : diagnostics.data?.status === "unavailable" ? (
        <div class="empty">
          <p>{diagnostics.data.message}</p>
          <p class="muted">
            Run {dateTime(diagnostics.data.computedAt)}. The check needs enough order history to hold the last part
            back; import more orders (or a longer history) and run the nightly job again.
          </p>
        </div>
      ) : diagnostics.data?.status === "ready" ? (
        <DiagnosticsCharts data={diagnostics.data} />
      ) : null}
    </section>
  );
}

/**
 * The check in a sentence: how far the forecast from each customer's own history (what the shelves and
 * the customer pages use) was from the holdout period's repeat purchases.
 */
function forecastVerdict(expected: number, actual: number): string {
  if (actual <= 0) return "No repeat purchase in the holdout period to compare the forecast with.";
  const off = expected / actual - 1;
  if (Math.abs(off) < 0.005) return "The forecast from each customer's own history matched the holdout period.";
  return `The forecast from each customer's own history was ${percent(Math.abs(off))} ${off > 0 ? "too high" : "too low"} over the holdout period.`;
}

function DiagnosticsCharts({ data }: { data: Extract<DiagnosticsView, { status: "ready" }> }) {
  const holdoutStart = data.tracking.findIndex((period) => period.phase === "holdout");
  const labels = data.tracking.map((period) => day(period.from));
  const olderHistory =
    data.calibration.firstPurchase !== undefined && data.calibration.firstPurchase < data.calibration.from;
  const name = data.model === "mbgnbd" ? "MBG/NBD" : "BG/NBD";
  return (
    <>
      <p id="diagnostics-model">
        {data.regularity
          ? `Model checked: the ${name} with each customer's purchase regularity, the one the nightly run put in force, refitted on the calibration period the same way.`
          : `Model checked: a plain ${name} with memoryless gaps, from before the check refitted the model in force; the next nightly run checks that one.`}
      </p>
      <p class="muted">
        Fitted on {count(data.customers, "customer")} ({data.sampledCustomers.toLocaleString("en-US")} sampled) over the
        calibration period {day(data.calibration.from)} – {day(data.calibration.to)}
        {olderHistory
          ? ` (and every purchase before it, from ${day(data.calibration.firstPurchase as string)}: the plot shows the last ${count(data.tracking.filter((period) => period.phase === "calibration").length, "week")})`
          : ""}
        , then compared with the holdout period {day(data.holdout.from)} – {day(data.holdout.to)}. Computed{" "}
        {dateTime(data.computedAt)}.
      </p>
      <dl class="tiles">
        <div class="tile">
          <dt>Holdout repeat purchases</dt>
          <dd class="figure">
            {figure(data.totals.holdout.actual)} actual · {forecast(data.totals.holdout.conditionalExpected)} expected
          </dd>
          <dd class="muted small">
            expected from each customer's own history, as the product forecasts; from the population alone (the tracking
            plot's line), {forecast(data.totals.holdout.expected)}
          </dd>
          <dd class="small">{forecastVerdict(data.totals.holdout.conditionalExpected, data.totals.holdout.actual)}</dd>
        </div>
        <div class="tile">
          <dt>Calibration repeat purchases</dt>
          <dd class="figure">
            {figure(data.totals.calibration.actual)} actual · {forecast(data.totals.calibration.expected)} expected
          </dd>
          <dd class="muted small">the period the model was fitted on</dd>
        </div>
      </dl>
      {data.tracking.length === 0 ? (
        <p class="empty">No periods to plot: the order history is shorter than one period.</p>
      ) : (
        <LineChart
          title={`Repeat purchases per ${data.periodDays}-day period: actual and expected`}
          labels={labels}
          labelsHeading="Period from"
          series={[
            { name: "Actual", values: data.tracking.map((period) => period.actual), tone: "series-a" },
            {
              name: "Expected (model)",
              values: data.tracking.map((period) => period.expected),
              tone: "series-b",
              dashed: true,
            },
          ]}
          format={figure}
          shade={holdoutStart >= 0 ? { from: holdoutStart, label: "Holdout period (not used for the fit)" } : undefined}
        />
      )}
      {data.byFrequency.length > 0 && (
        <>
          <LineChart
            title="Holdout repeat purchases per customer, by repeat purchases in calibration"
            labels={data.byFrequency.map((group) => group.purchases)}
            labelsHeading="Repeat purchases"
            // The table under it has these figures, with each group's customers.
            figuresTable={false}
            series={[
              { name: "Actual mean", values: data.byFrequency.map((group) => group.actualMean), tone: "series-a" },
              {
                name: "Expected mean",
                values: data.byFrequency.map((group) => group.expectedMean),
                tone: "series-b",
                dashed: true,
              },
            ]}
            format={(value) => value.toFixed(2)}
          />
          <TableWrap label="By frequency in the calibration period">
            <table>
              <caption>By frequency in the calibration period</caption>
              <thead>
                <tr>
                  <th scope="col">Repeat purchases</th>
                  <th scope="col">Customers</th>
                  <th scope="col">Actual mean</th>
                  <th scope="col">Expected mean</th>
                </tr>
              </thead>
              <tbody>
                {data.byFrequency.map((group) => (
                  <tr key={group.purchases}>
                    <th scope="row">{group.purchases}</th>
                    <td>{group.customers.toLocaleString("en-US")}</td>
                    <td>{group.actualMean.toFixed(2)}</td>
                    <td>{group.expectedMean.toFixed(2)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </>
      )}
    </>
  );
}
