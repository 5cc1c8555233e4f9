// Models: the fits in force (GET /v1/admin/models: BG/NBD and Gamma-Gamma parameters, sample size,
// log-likelihood, fit date, fallbacks, value-tier thresholds), and the nightly job: start it and watch
// its progress. No fit yet: the page says so and offers the button.
import { dateTime, money, percent } from "../api.ts";
import { Loading, PageHeader, ProblemNote, RunNightly, useData } from "../ui.tsx";

interface Models {
  customer: {
    fittedAt: string;
    sampleSize: number;
    source: string;
    fallbacks: { model: string; reason: string; estimate: string }[];
    excluded: Record<string, number>;
    timeUnitDays: number;
    bgnbd: { r: number; alpha: number; a: number; b: number; logLikelihood: number | null; converged: boolean };
    gammaGamma: { p: number; q: number; gamma: number; converged: boolean };
    valueTiers: Record<string, number>;
    discountShare: number;
    cadencePriorDays: number;
    secondPurchase: { sample: number; returnedShare: number };
  };
  population: { fittedAt: string; customers: number; categories: number } | null;
}

const round = (value: number | null | undefined, digits = 4) =>
  value == null || !Number.isFinite(value) ? "–" : String(Math.round(value * 10 ** digits) / 10 ** digits);

export function ModelsPage() {
  const models = useData<Models>("/v1/admin/models");
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
          <RunNightly onDone={models.reload} />
        </div>
      ) : models.problem ? (
        <ProblemNote problem={models.problem} />
      ) : models.data ? (
        <>
          <Fits models={models.data} />
          <h2>Run the nightly job</h2>
          <RunNightly onDone={models.reload} label="Run the nightly job now" />
        </>
      ) : null}
    </section>
  );
}

function Fits({ models }: { models: Models }) {
  const { customer, population } = models;
  return (
    <>
      <dl class="tiles">
        <div class="tile">
          <dt>Fitted</dt>
          <dd class="figure">{dateTime(customer.fittedAt)}</dd>
          <dd class="muted small">{customer.source === "fitted" ? "fitted on this data" : customer.source}</dd>
        </div>
        <div class="tile">
          <dt>Sample</dt>
          <dd class="figure">{customer.sampleSize.toLocaleString("en-US")}</dd>
          <dd class="muted small">customers in the fit</dd>
        </div>
        <div class="tile">
          <dt>Log-likelihood</dt>
          <dd class="figure">{round(customer.bgnbd.logLikelihood, 1)}</dd>
          <dd class="muted small">BG/NBD</dd>
        </div>
        <div class="tile">
          <dt>Second-purchase rate</dt>
          <dd class="figure">{percent(customer.secondPurchase.returnedShare)}</dd>
          <dd class="muted small">over a sample of {customer.secondPurchase.sample} customers</dd>
        </div>
      </dl>
      <div class="columns">
        <table>
          <caption>BG/NBD (purchase frequency and dropout; time unit {customer.timeUnitDays} days)</caption>
          <tbody>
            {(["r", "alpha", "a", "b"] as const).map((name) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>{round(customer.bgnbd[name])}</td>
              </tr>
            ))}
            <tr>
              <th scope="row">converged</th>
              <td>{customer.bgnbd.converged ? "yes" : "no"}</td>
            </tr>
          </tbody>
        </table>
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
              <td>{customer.gammaGamma.converged ? "yes" : "no"}</td>
            </tr>
          </tbody>
        </table>
        <table>
          <caption>Value tiers (12-month CLV from)</caption>
          <tbody>
            {Object.entries(customer.valueTiers).map(([tier, threshold]) => (
              <tr key={tier}>
                <th scope="row">{tier}</th>
                <td>{money(threshold)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Fallbacks</h2>
      {customer.fallbacks.length === 0 ? (
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
          Category statistics: {population.customers.toLocaleString("en-US")} customers over {population.categories}{" "}
          categories, fitted {dateTime(population.fittedAt)}.
        </p>
      )}
    </>
  );
}
