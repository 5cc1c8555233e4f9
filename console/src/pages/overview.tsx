// Overview: customers by lifecycle stage × value tier with their 12-month CLV (GET /v1/admin/segments),
// CLV by stage as a chart, the CLV distribution (clv-distribution.tsx), the 12-month CLV of the fading and lapsed
// customers (not the Customers list's CLV at stake: see the tile), and the stage changes the
// recent nightly runs recorded (GET /v1/admin/transitions/summary), and what a value tier's customers have in
// common against everyone else (GET /v1/admin/insights/best-customers).
import { useLocation } from "preact-iso";
import { count, dateTime, day, inCurrency, money, moneyIn, percent, whole, words } from "../api.ts";
import {
  BarChart,
  type Loaded,
  Loading,
  type NightlyRun,
  PageHeader,
  ProblemNote,
  RunNightly,
  TableWrap,
  useData,
} from "../ui.tsx";
import { ClvDistribution } from "./clv-distribution.tsx";

const stages = ["new", "active", "fading", "lapsed"];
const tiers = ["top", "high", "medium", "low"];

interface SummaryRow {
  stage: string;
  valueTier: string;
  customers: number;
  clv12: number;
}
interface Segments {
  customers: { customerId: string; clv12: number; stage: string; valueTier: string }[];
  summary: SummaryRow[];
}
interface Transition {
  id: number;
  customerId: string;
  from: string | null;
  to: string;
  at: string;
  runId: string;
}
interface TransitionSummary {
  changes: number;
  kinds: { from: string | null; to: string; changes: number }[];
  recent: Transition[];
}

const transitionDays = 30;

export function OverviewPage() {
  const segments = useData<Segments>("/v1/admin/segments?limit=10");
  const since = new Date(Date.now() - transitionDays * 86_400_000).toISOString().slice(0, 10);
  const transitions = useData<TransitionSummary>(`/v1/admin/transitions/summary?since=${since}T00:00:00Z&recent=10`);
  if (segments.loading && !segments.data) return <Loading what="the overview" />;
  if (segments.problem) return <ProblemNote problem={segments.problem} />;
  const summary = segments.data?.summary ?? [];
  if (summary.length === 0) return <NoneScored reload={() => (segments.reload(), transitions.reload())} />;
  const cell = (stage: string, tier: string) => summary.find((row) => row.stage === stage && row.valueTier === tier);
  const byStage = stages.map((stage) => {
    const rows = summary.filter((row) => row.stage === stage);
    return {
      stage,
      customers: rows.reduce((sum, row) => sum + row.customers, 0),
      clv12: rows.reduce((sum, row) => sum + (row.clv12 ?? 0), 0),
    };
  });
  const total = byStage.reduce((sum, row) => sum + row.customers, 0);
  const atStake = byStage.filter((row) => row.stage === "fading" || row.stage === "lapsed");
  const stakeValue = atStake.reduce((sum, row) => sum + row.clv12, 0);
  const stakeCustomers = atStake.reduce((sum, row) => sum + row.customers, 0);
  return (
    <section>
      <PageHeader title="Overview">
        <p class="muted">
          {total.toLocaleString("en-US")} scored customers, from the last nightly run. CLV is the expected spend over
          the next 12 months.
        </p>
      </PageHeader>
      <div class="tiles">
        <div class="tile wide">
          <h2>12-month CLV of fading and lapsed customers</h2>
          <p class="figure">{moneyIn(stakeValue)}</p>
          <p class="muted">
            What these {count(stakeCustomers, "customer")} are still expected to spend in the next 12 months, already
            lowered by the chance they have stopped. Not their CLV at stake (Customers): a year of their usual orders ×
            that chance, what is lost if they have gone.
          </p>
        </div>
        {atStake.map((row) => (
          <div class="tile" key={row.stage}>
            <h2>{row.stage === "fading" ? "Fading" : "Lapsed"}</h2>
            <p class="figure">{moneyIn(row.clv12)}</p>
            <p class="muted">{count(row.customers, "customer")}</p>
          </div>
        ))}
      </div>
      <BarChart
        title={inCurrency("12-month CLV by lifecycle stage")}
        bars={byStage.map((row) => ({ label: row.stage, value: row.clv12, note: count(row.customers, "customer") }))}
        format={money}
        headings={{ label: "Stage", value: inCurrency("12-month CLV"), note: "Customers" }}
      />
      <ClvDistribution />
      <h2>Customers by stage and value tier</h2>
      {/* The cells' amounts carry no code: said once here, as a table of amounts names it in its heading. */}
      <p class="muted small">Each cell: customers · {inCurrency("their 12-month CLV")}.</p>
      <TableWrap label="Customers by stage and tier">
        <table>
          <caption class="visually-hidden">Customers and 12-month CLV by lifecycle stage and value tier</caption>
          <thead>
            <tr>
              <th scope="col">Stage</th>
              {tiers.map((tier) => (
                <th scope="col" key={tier}>
                  {tier}
                </th>
              ))}
              <th scope="col">All tiers</th>
            </tr>
          </thead>
          <tbody>
            {byStage.map((row) => (
              <tr key={row.stage}>
                <th scope="row">{row.stage}</th>
                {tiers.map((tier) => {
                  const found = cell(row.stage, tier);
                  return (
                    <td key={tier}>
                      {found ? (
                        <>
                          {found.customers.toLocaleString("en-US")}
                          <span class="muted small"> · {money(found.clv12)}</span>
                        </>
                      ) : (
                        "0"
                      )}
                    </td>
                  );
                })}
                <td>
                  {row.customers.toLocaleString("en-US")}
                  <span class="muted small"> · {money(row.clv12)}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <h2>Most valuable customers</h2>
      <TableWrap label="Most valuable customers">
        <table>
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col">{inCurrency("12-month CLV")}</th>
              <th scope="col">Tier</th>
              <th scope="col">Stage</th>
            </tr>
          </thead>
          <tbody>
            {(segments.data?.customers ?? []).map((customer) => (
              <tr key={customer.customerId}>
                <td>
                  <a href={`/console/customers/${encodeURIComponent(customer.customerId)}`}>{customer.customerId}</a>
                </td>
                <td>{money(customer.clv12)}</td>
                <td>{customer.valueTier}</td>
                <td>{customer.stage}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <BestCustomers onRun={segments.reload} />
      <h2>Movement in the last {transitionDays} days</h2>
      <Transitions loaded={transitions} />
    </section>
  );
}

function Transitions({ loaded }: { loaded: Loaded<TransitionSummary> }) {
  if (loaded.loading && !loaded.data) return <Loading what="stage changes" />;
  if (loaded.problem) return <ProblemNote problem={loaded.problem} />;
  const summary = loaded.data;
  if (!summary || summary.changes === 0)
    return <p class="muted">No customer changed stage in this period. Stage changes appear after each nightly run.</p>;
  const recent = summary.recent;
  return (
    <div class="columns">
      <div>
        <TableWrap label="Stage changes by kind">
          <table>
            <caption>
              Stage changes by kind: {count(summary.changes, "change")} in all (a customer who changed twice counts
              twice)
            </caption>
            <thead>
              <tr>
                <th scope="col">Change</th>
                <th scope="col">Changes</th>
              </tr>
            </thead>
            <tbody>
              {summary.kinds.map((kind) => (
                <tr key={`${kind.from}→${kind.to}`}>
                  <td>
                    {kind.from ?? "(first score)"} → {kind.to}
                  </td>
                  <td>{whole(kind.changes)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </div>
      <div>
        <TableWrap label="Most recent stage changes">
          <table>
            <caption>Most recent</caption>
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col">Change</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {recent.map((item) => (
                <tr key={item.id}>
                  <td>
                    <a href={`/console/customers/${encodeURIComponent(item.customerId)}`}>{item.customerId}</a>
                  </td>
                  <td>
                    {item.from ?? "(first score)"} → {item.to}
                  </td>
                  <td>{day(item.at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </div>
    </div>
  );
}

interface Trait {
  dimension: string;
  value: string;
  label: string;
  topShare: number;
  restShare: number;
  lift: number;
  topCustomers: number;
  restCustomers: number;
  score: number;
  sentence: string;
}
interface BestCustomersView {
  tier: string;
  customers: number;
  comparedWith: number;
  modelRunAt: string | null;
  runId: string | null;
  traits: Trait[];
  message?: string;
}

/** A trait's name as the rest of the console says it: a sensitivity in words ("deal seeker"), not the API's value. */
const traitLabel = (trait: Trait) => (trait.dimension === "discountSensitivity" ? words(trait.value) : trait.label);

const dimensionNames: Record<string, string> = {
  category: "Category",
  channel: "Channel",
  priceBand: "Price band",
  discountSensitivity: "Discount sensitivity",
  weekday: "Weekday",
  store: "Store",
};

/**
 * "What the best customers have in common": the traits most distinctive of one value tier, ranked. The
 * tier chosen is kept in the page's address (`/console?tier=high`), so Back from a customer opened from
 * the page, a reload or a shared link shows the same tier; top is the address without one.
 */
function BestCustomers({ onRun }: { onRun: () => void }) {
  const { query, route } = useLocation();
  const tier = tiers.includes(query.tier ?? "") ? (query.tier as string) : "top";
  const setTier = (next: string) =>
    route(next === "top" ? "/console" : `/console?tier=${encodeURIComponent(next)}`, true);
  const insight = useData<BestCustomersView>(`/v1/admin/insights/best-customers?tier=${encodeURIComponent(tier)}`);
  const data = insight.data;
  return (
    <section class="best-customers" aria-labelledby="best-customers-title">
      <div class="section-header">
        <h2 id="best-customers-title">
          What {tier === "top" ? "the best customers" : `${tier}-tier customers`} have in common
        </h2>
        <div class="field inline">
          <label for="best-tier">Value tier</label>
          <select id="best-tier" value={tier} onChange={(event) => setTier((event.target as HTMLSelectElement).value)}>
            {tiers.map((value) => (
              <option key={value} value={value}>
                {value}
              </option>
            ))}
          </select>
        </div>
      </div>
      {/* While another tier's traits load, not the last tier's under this tier's heading. */}
      {insight.loading ? (
        <Loading what={`what ${tier === "top" ? "the best customers" : `${tier}-tier customers`} have in common`} />
      ) : insight.problem ? (
        <ProblemNote problem={insight.problem} />
      ) : !data || data.runId === null ? (
        <div class="empty">
          <p>
            {data?.message ??
              "Nothing to compare yet: the traits are counted by the nightly job while it scores customers."}{" "}
            Run the nightly job, then come back here.
          </p>
          <RunNightly
            onDone={() => {
              insight.reload();
              onRun();
            }}
          />
        </div>
      ) : data.traits.length === 0 ? (
        <p class="muted">
          No trait sets the {data.tier} tier's {data.customers.toLocaleString("en-US")} customers apart from the other{" "}
          {data.comparedWith.toLocaleString("en-US")} yet (a trait needs at least 5 of them). Try another tier, or look
          again after more orders and the next nightly run.
        </p>
      ) : (
        <>
          <p class="muted">
            {data.customers.toLocaleString("en-US")} {data.tier}-tier customers against{" "}
            {data.comparedWith.toLocaleString("en-US")} others, from the nightly run of {dateTime(data.modelRunAt)}.
            Most distinctive first, by how surely the trait sets them apart (the low end of its 95% interval), so a
            bigger lift on fewer customers can come below a smaller one on many. The bars show who has the trait:{" "}
            {data.tier}-tier customers (upper) and the rest (lower).
          </p>
          <ol class="traits" aria-label={`Traits of ${data.tier}-tier customers, most distinctive first`}>
            {data.traits.map((trait) => (
              <li key={`${trait.dimension}:${trait.value}`} class="trait">
                <div>
                  <span class="badge">{dimensionNames[trait.dimension] ?? trait.dimension}</span>{" "}
                  <strong>{traitLabel(trait)}</strong>
                  <p class="sentence">{trait.sentence}</p>
                </div>
                <PairedBar top={trait.topShare} rest={trait.restShare} tier={data.tier} label={traitLabel(trait)} />
                <p class="lift">
                  <span class="figure">{formatLift(trait.lift)}</span>
                  <span class="muted small">lift</span>
                </p>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

const formatLift = (lift: number) => `×${lift >= 10 ? lift.toFixed(0) : lift.toFixed(1)}`;

function PairedBar({ top, rest, tier, label }: { top: number; rest: number; tier: string; label: string }) {
  const width = 220;
  const barSpace = 150;
  const text = `${label}: ${percent(top)} of ${tier}-tier customers vs ${percent(rest)} of the rest`;
  return (
    <svg class="paired-bar" viewBox={`0 0 ${width} 40`} role="img" aria-label={text}>
      <title>{text}</title>
      <rect x="0" y="3" width={barSpace} height="14" rx="3" class="pair-track" />
      <rect x="0" y="3" width={Math.max(1, top * barSpace)} height="14" rx="3" class="pair-top" />
      <text x={barSpace + 6} y="10" class="chart-value" dominant-baseline="middle">
        {percent(top)}
      </text>
      <rect x="0" y="23" width={barSpace} height="14" rx="3" class="pair-track" />
      <rect x="0" y="23" width={Math.max(1, rest * barSpace)} height="14" rx="3" class="pair-rest" />
      <text x={barSpace + 6} y="30" class="chart-value" dominant-baseline="middle">
        {percent(rest)}
      </text>
    </svg>
  );
}

/**
 * Nobody scored: before the first run, the run to start; after a run that found no customer (a store
 * with no orders yet), that, and to load orders first: the run did not fail, and running it again
 * alone changes nothing.
 */
function NoneScored({ reload }: { reload: () => void }) {
  const runs = useData<{ runs: NightlyRun[] }>("/v1/admin/jobs/nightly?limit=1");
  const last = runs.data?.runs[0];
  const ranEmpty = last?.status === "done";
  return (
    <section>
      <PageHeader title="Overview" />
      <div class="empty">
        <h2>No customer has been scored yet</h2>
        {ranEmpty ? (
          <p>
            The last nightly run finished {dateTime(last.finishedAt)} and found no customer to score: it scores the
            customers whose orders had arrived when it ran. Load orders if there are none yet (
            <code>POST /v1/orders</code> or <code>npx patron import</code>), then run it again.
          </p>
        ) : (
          <p>
            Stages, value tiers and CLV come from the nightly model job. No model fit yet: run the nightly job now (it
            also runs every night on its own), then come back here.
          </p>
        )}
        <RunNightly
          onDone={() => {
            reload();
            runs.reload();
          }}
        />
      </div>
    </section>
  );
}
