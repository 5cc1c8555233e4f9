// Experiments: the holdout comparison from GET /v1/admin/holdout, per arm (recommendations seen,
// impressions, clicks, click-through rate, attributed orders and revenue) and the personalised ÷
// holdout lift, over a chosen period.
import { useState } from "preact/hooks";
import { money, percent } from "../api.ts";
import { BarChart, Loading, PageHeader, ProblemNote, useData } from "../ui.tsx";

interface Arm {
  arm: string;
  recommendations: number;
  customers: number;
  impressions: number;
  clicks: number;
  clickThroughRate: number | null;
  attributedOrders: number;
  attributedRevenue: number;
}
interface Holdout {
  since: string;
  arms: Arm[];
  lift: { clickThroughRate: number | null; ordersPerRecommendation: number | null };
}

const periods = [7, 30, 90];

function liftWords(value: number | null): string {
  if (value == null) return "not measurable yet";
  const change = Math.round((value - 1) * 100);
  return change === 0 ? "no difference" : `${change > 0 ? "+" : ""}${change}% (×${value})`;
}

export function ExperimentsPage() {
  const [days, setDays] = useState(30);
  const since = new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
  const holdout = useData<Holdout>(`/v1/admin/holdout?since=${since}T00:00:00Z`);
  return (
    <section>
      <PageHeader title="Experiments">
        <p class="muted">
          A stable share of known shoppers (HOLDOUT_SHARE) is held out of personalisation, so the personalised shelf is
          compared with what they see instead.
        </p>
      </PageHeader>
      <div class="field inline">
        <label for="period">Period</label>
        <select
          id="period"
          value={String(days)}
          onChange={(event) => setDays(Number((event.target as HTMLSelectElement).value))}
        >
          {periods.map((period) => (
            <option key={period} value={String(period)}>
              Last {period} days
            </option>
          ))}
        </select>
      </div>
      {holdout.loading && !holdout.data ? (
        <Loading what="holdout results" />
      ) : holdout.problem ? (
        <ProblemNote problem={holdout.problem} />
      ) : (holdout.data?.arms ?? []).length === 0 ? (
        <div class="empty">
          <p>
            No recommendation was seen in this period. Results appear once storefronts show the widget (impressions and
            clicks come from it) and orders carry the recommendation id.
          </p>
        </div>
      ) : (
        <Results data={holdout.data as Holdout} />
      )}
    </section>
  );
}

function Results({ data }: { data: Holdout }) {
  const perRecommendation = (arm: Arm) => (arm.recommendations > 0 ? arm.attributedOrders / arm.recommendations : 0);
  return (
    <>
      <div class="tiles">
        <div class="tile">
          <h2>Click-through lift</h2>
          <p class="figure">{liftWords(data.lift.clickThroughRate)}</p>
          <p class="muted small">personalised ÷ holdout</p>
        </div>
        <div class="tile">
          <h2>Orders per recommendation lift</h2>
          <p class="figure">{liftWords(data.lift.ordersPerRecommendation)}</p>
          <p class="muted small">personalised ÷ holdout</p>
        </div>
      </div>
      <div class="table-wrap">
        <table>
          <caption>Results per arm since {new Date(data.since).toLocaleDateString("en-GB")}</caption>
          <thead>
            <tr>
              <th scope="col">Arm</th>
              <th scope="col">Shoppers</th>
              <th scope="col">Recommendations</th>
              <th scope="col">Impressions</th>
              <th scope="col">Clicks</th>
              <th scope="col">CTR</th>
              <th scope="col">Attributed orders</th>
              <th scope="col">Revenue</th>
            </tr>
          </thead>
          <tbody>
            {data.arms.map((arm) => (
              <tr key={arm.arm}>
                <th scope="row">{arm.arm}</th>
                <td>{arm.customers}</td>
                <td>{arm.recommendations}</td>
                <td>{arm.impressions}</td>
                <td>{arm.clicks}</td>
                <td>{percent(arm.clickThroughRate, 1)}</td>
                <td>{arm.attributedOrders}</td>
                <td>{money(arm.attributedRevenue)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="columns">
        <BarChart
          title="Click-through rate by arm"
          bars={data.arms.map((arm) => ({ label: arm.arm, value: arm.clickThroughRate ?? 0 }))}
          format={(value) => percent(value, 1)}
        />
        <BarChart
          title="Attributed orders per recommendation"
          bars={data.arms.map((arm) => ({ label: arm.arm, value: perRecommendation(arm) }))}
          format={(value) => value.toFixed(3)}
        />
      </div>
    </>
  );
}
