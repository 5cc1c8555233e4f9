// Experiments: the holdout comparison from GET /v1/admin/holdout, per arm (recommendations seen,
// impressions, clicks, click-through rate, attributed orders and revenue) and the personalized ÷
// holdout lift, since the experiment began or over the last 7, 30 or 90 days; the verdict as the headline
// (from the experiment's start only: a moving window has none), each metric and every lift with its
// 95% interval, results over time, and the per-placement breakdown. Figures are shown as the API
// rounded them (proportions to 4 places, lifts to 3), never rounded again, so a bound reads the same
// everywhere; a lift looks like a result only once its interval excludes 1 and the verdict is in.
import { useLocation } from "preact-iso";
import { points } from "../../../worker/core/rules/experiment.ts";
import { count, day, inCurrency, money, moneyIn, percent, whole } from "../api.ts";
import { BarChart, LineChart, Loading, PageHeader, ProblemNote, TableWrap, useData } from "../ui.tsx";

interface Interval {
  value: number | null;
  ci95: [number, number] | null;
}
type Intervals = Record<MetricName, Interval | null>;
type MetricName =
  | "impressionsPerShopper"
  | "clickThroughRate"
  | "attributedOrdersPerShopper"
  | "conversion"
  | "revenuePerShopper";
interface PeriodArm {
  shoppers: number;
  clickThroughRate: number | null;
  conversion: number | null;
}

interface Arm {
  arm: string;
  recommendations: number;
  customers: number;
  impressions: number;
  clicks: number;
  clickThroughRate: number | null;
  attributedOrders: number;
  attributedRevenue: number;
  shoppers?: number;
  intervals?: Intervals;
}
interface Holdout {
  since: string;
  /** The first holdout event kept: where the experiment's results begin (null before any). */
  began?: string | null;
  /** The experiment's first events are past the retention: its start moves each day. */
  startTrimmed?: boolean;
  /** The share of known shoppers held out now (HOLDOUT_SHARE, or its default). */
  holdoutShare?: number;
  /** HOLDOUT_SHARE is 0 after shoppers were held out: the last held-out shelf, where the results end. */
  ended?: string | null;
  arms: Arm[];
  lift: {
    clickThroughRate: number | null;
    ordersPerRecommendation: number | null;
    ordersPerRecommendationCi95?: [number, number] | null;
    intervals?: Intervals;
  };
  withoutEvents?: { attributedOrders: number; attributedRevenue: number };
  verdict?: {
    decided: boolean;
    winner: string | null;
    text: string;
    /** Personalized minus holdout conversion with its always-valid 95% interval (the one that decides). */
    difference?: Interval | null;
  };
  overTime?: { by: string; periods: { period: string; personalized: PeriodArm | null; holdout: PeriodArm | null }[] };
  placements?: { placement: string | null; arms: Omit<Arm, "shoppers" | "intervals">[] }[];
}

// Each at the places the API rounds it to (worker/core/rules/experiment.ts).
const metrics: { name: MetricName; label: string; format: (value: number) => string }[] = [
  { name: "conversion", label: "Conversion (shoppers with an attributed order)", format: (value) => percent(value, 2) },
  {
    name: "clickThroughRate",
    label: "Click-through rate (clicks per impression)",
    format: (value) => percent(value, 2),
  },
  { name: "attributedOrdersPerShopper", label: "Attributed orders per shopper", format: (value) => value.toFixed(4) },
  { name: "revenuePerShopper", label: "Revenue per shopper", format: moneyIn },
  { name: "impressionsPerShopper", label: "Impressions per shopper", format: (value) => value.toFixed(3) },
];

function withInterval(
  interval: Interval | null | undefined,
  format: (value: number) => string,
  shoppers?: number,
): string {
  // No holdout shopper (HOLDOUT_SHARE=0) or no personalized one: no value to show, nor an interval.
  if (interval?.value == null) return "not measurable yet";
  // A mean from fewer than 30 shoppers, or from shoppers all alike, has a value and no interval: an
  // arm's own count says which.
  const why =
    shoppers === undefined ? "under 30 shoppers, or all alike" : shoppers < 30 ? "under 30 shoppers" : "all alike";
  return interval.ci95
    ? `${format(interval.value)} (95% CI ${format(interval.ci95[0])} to ${format(interval.ci95[1])})`
    : `${format(interval.value)} (no interval: ${why})`;
}
/** A lift as the API has it, to 3 places. */
const times = (value: number) => `${value.toFixed(3)}×`;

/** Moving windows, in days; without one the page reads the whole experiment (since=start). */
const windows = [7, 30, 90];

/**
 * One lift as a tile: its value and 95% interval, and, unless the interval excludes no difference (1×)
 * and the verdict is in, muted and saying why it is not a result yet.
 */
function LiftTile({
  title,
  unit,
  lift,
  decided,
  moving,
}: {
  title: string;
  unit: string;
  lift: Interval;
  decided: boolean;
  moving: boolean;
}) {
  const excludesOne = lift.ci95 != null && (lift.ci95[0] > 1 || lift.ci95[1] < 1);
  const note =
    lift.value == null
      ? null
      : lift.ci95 == null
        ? "No interval yet: too few recommendations or attributed orders in an arm (under 30), or all alike."
        : !excludesOne
          ? `Not ${moving ? "" : "yet "}significant: the 95% interval includes no difference (1×).`
          : moving
            ? "Not a result: a moving window has no verdict."
            : !decided
              ? "Not a result yet: the verdict, on conversion, is still open."
              : null;
  return (
    <div class={note || lift.value == null ? "tile muted" : "tile"}>
      <h2>{title}</h2>
      <p class="figure">{lift.value == null ? "not measurable yet" : times(lift.value)}</p>
      {lift.ci95 && (
        <p class="small">
          95% CI {times(lift.ci95[0])} to {times(lift.ci95[1])}
        </p>
      )}
      {note && <p class="small">{note}</p>}
      <p class="muted small">{unit}, personalized ÷ holdout</p>
    </div>
  );
}

/**
 * A lift in the table, as the tiles show theirs: muted until its interval excludes no difference (1×)
 * and the verdict is in, and saying "not yet significant" while the interval includes 1 ("not
 * significant" on a moving window, where waiting brings no verdict).
 */
function LiftCell({
  lift,
  decided,
  moving,
  shoppers,
}: {
  lift: Interval | null | undefined;
  decided: boolean;
  moving: boolean;
  shoppers?: number;
}) {
  const significant = lift?.ci95 != null && (lift.ci95[0] > 1 || lift.ci95[1] < 1);
  const includesOne = lift?.ci95 != null && !significant;
  return (
    <td class={significant && decided ? undefined : "muted"}>
      {withInterval(lift, times, shoppers)}
      {includesOne && (moving ? "; not significant" : "; not yet significant")}
    </td>
  );
}

/** What the experiment counts, and the attributed orders it leaves out (GET /v1/admin/holdout `withoutEvents`). */
function WhoCounts({ left }: { left: Holdout["withoutEvents"] }) {
  if (!left) return null;
  return (
    <p class="muted small">
      The experiment counts shoppers whose widget reported a shelf (an impression, click or view under it) in this
      period.{" "}
      {left.attributedOrders > 0
        ? `${count(left.attributedOrders, "attributed order")} (${moneyIn(left.attributedRevenue)}) in this period came from shelves whose widget reported none in this period (the widget may be blocked, or the shelf shown before the period began): those shoppers are not known to have seen the shelf here, so the orders are left out of every arm, lift and interval.`
        : "No attributed order in this period was left out for want of one."}
    </p>
  );
}

export function ExperimentsPage() {
  // The period is in the address (?days=7), so a reload or a shared link shows the same results; none
  // is the whole experiment, the fixed start its verdict is read from.
  const { query, route } = useLocation();
  const days = windows.includes(Number(query.days)) ? Number(query.days) : null;
  const setDays = (next: string) => route(`/console/experiments${next ? `?days=${next}` : ""}`, true);
  const since = days ? `${new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10)}T00:00:00Z` : "start";
  const holdout = useData<Holdout>(`/v1/admin/holdout?since=${since}`);
  return (
    <section>
      <PageHeader title="Experiments">
        <p class="muted">
          A stable share of known shoppers (HOLDOUT_SHARE
          {holdout.data?.holdoutShare != null
            ? `, now ${holdout.data.holdoutShare === 0 ? "none" : percent(holdout.data.holdoutShare, 1)}`
            : ""}
          ) is held out of personalization, so the personalized shelf is compared with what they see instead.
        </p>
      </PageHeader>
      {holdout.data?.holdoutShare === 0 &&
        (holdout.data.ended ? (
          <p class="card" role="note">
            HOLDOUT_SHARE is 0: the experiment ended with its last held-out shelf, {day(holdout.data.ended)}. The
            results below stop there: the shoppers held out until then see personalized shelves now, and counted on,
            they would be in both arms. To run another, set it again (0.1 holds out 10% of known shoppers) and read the
            results from that day on: "Since the experiment began" still starts at this one.
          </p>
        ) : (
          <p class="card" role="note">
            HOLDOUT_SHARE is 0: no shopper is held out, so the holdout arm stays empty and no lift can be measured. Set
            it (0.1 holds out 10% of known shoppers) in the worker's settings to run the experiment.
          </p>
        ))}
      <div class="field inline">
        <label for="period">Period</label>
        <select
          id="period"
          value={String(days ?? "")}
          onChange={(event) => setDays((event.target as HTMLSelectElement).value)}
        >
          <option value="">Since the experiment began</option>
          {windows.map((period) => (
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
          <WhoCounts left={holdout.data?.withoutEvents} />
        </div>
      ) : (
        <Results data={personalizedFirst(holdout.data as Holdout)} moving={days} />
      )}
    </section>
  );
}

/** The arms as the lift reads them, personalized ÷ holdout: personalized first in every table and chart. */
function personalizedFirst(data: Holdout): Holdout {
  const rank = (arm: string) => (arm === "personalized" ? 0 : arm === "holdout" ? 1 : 2);
  const ordered = <T extends { arm: string }>(arms: T[]) => [...arms].sort((a, b) => rank(a.arm) - rank(b.arm));
  return {
    ...data,
    arms: ordered(data.arms),
    placements: data.placements?.map((placement) => ({ ...placement, arms: ordered(placement.arms) })),
  };
}

/** `moving`: the days of a moving window, which has no verdict; null for the whole experiment. */
function Results({ data, moving }: { data: Holdout; moving: number | null }) {
  const perRecommendation = (arm: Arm) => (arm.recommendations > 0 ? arm.attributedOrders / arm.recommendations : 0);
  const armsWithIntervals = data.arms.filter((arm) => arm.intervals);
  // A start the retention has trimmed moves each day too: no verdict from it either.
  const trimmed = moving === null && data.startTrimmed === true;
  // Neither a moving window nor a trimmed start can give a verdict.
  const noVerdict = moving !== null || trimmed;
  const decided = data.verdict?.decided === true && !noVerdict;
  const none: Interval = { value: null, ci95: null };
  return (
    <>
      {data.verdict && moving !== null && (
        <div class="verdict" role="status">
          <h2>No verdict on a moving window</h2>
          <p class="small">
            The last {moving} days start a day later each day, and an interval read on them every day would name a
            winner that is not one more often than 1 time in 20. The verdict is read from one fixed start:{" "}
            <a href="/console/experiments">since the experiment began</a>
            {data.began ? ` (${day(data.began)})` : ""}. Every interval below is for these {moving} days, read once.
          </p>
        </div>
      )}
      {data.verdict && trimmed && (
        <div class="verdict" role="status">
          <h2>No verdict: the experiment's start is no longer kept</h2>
          <p class="small">
            Its first events are older than the events database keeps them (EVENT_RETENTION_DAYS), so "since the
            experiment began" now starts a day later each day, as a moving window does, and read every day its intervals
            would name a winner that is not one more often than 1 time in 20. Read from a fixed date with the API (GET
            /v1/admin/holdout?since=…), or keep events longer.
          </p>
        </div>
      )}
      {data.verdict && moving === null && !trimmed && (
        <div class={data.verdict.decided ? "verdict decided" : "verdict"} role="status">
          <h2>{data.verdict.decided ? "Verdict" : "No verdict yet"}</h2>
          <p class="figure">{data.verdict.text}</p>
          <p class="small">
            {data.verdict.decided ? "Decided by" : "The verdict waits for"} an always-valid interval for the difference
            in conversion
            {data.verdict.difference?.ci95
              ? ` (now ${points(data.verdict.difference.value ?? 0)} points, 95% CI ${points(data.verdict.difference.ci95[0])} to ${points(data.verdict.difference.ci95[1])})`
              : ""}
            : counted from the experiment's start ({day(data.since)}), it holds however often it is read, so checking
            every day does not make a false verdict likelier. Every other interval here, conversion's included, is for
            one look.
          </p>
        </div>
      )}
      <WhoCounts left={data.withoutEvents} />
      {armsWithIntervals.length > 0 && (
        <TableWrap label="Arms and their intervals">
          <table>
            <caption>
              Metrics per arm with 95% intervals (per shopper whose widget reported a shelf; click-through per
              impression)
            </caption>
            <thead>
              <tr>
                <th scope="col">Metric</th>
                {armsWithIntervals.map((arm) => (
                  <th scope="col" key={arm.arm}>
                    {arm.arm} ({count(arm.shoppers ?? 0, "shopper")})
                  </th>
                ))}
                <th scope="col">Lift (personalized ÷ holdout)</th>
              </tr>
            </thead>
            <tbody>
              {metrics.map((metric) => (
                <tr key={metric.name}>
                  <th scope="row">{metric.label}</th>
                  {armsWithIntervals.map((arm) => (
                    <td key={arm.arm}>{withInterval(arm.intervals?.[metric.name], metric.format, arm.shoppers)}</td>
                  ))}
                  <LiftCell
                    lift={data.lift.intervals?.[metric.name]}
                    decided={decided}
                    moving={noVerdict}
                    shoppers={Math.min(...armsWithIntervals.map((arm) => arm.shoppers ?? 0))}
                  />
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {data.overTime && data.overTime.periods.length > 0 && (
        <LineChart
          title={`Conversion per ${data.overTime.by === "week" ? "week" : "day"} by arm`}
          labels={data.overTime.periods.map((period) => period.period)}
          labelsHeading={data.overTime.by === "week" ? "Week starting (UTC)" : "Day (UTC)"}
          series={[
            {
              name: "personalized",
              values: data.overTime.periods.map((period) => period.personalized?.conversion ?? null),
              tone: "series-a",
            },
            {
              name: "holdout",
              values: data.overTime.periods.map((period) => period.holdout?.conversion ?? null),
              tone: "series-b",
              dashed: true,
            },
          ]}
          format={(value) => percent(value, 1)}
        />
      )}
      <div class="tiles">
        <LiftTile
          title="Click-through lift"
          unit="Clicks per impression"
          lift={data.lift.intervals?.clickThroughRate ?? none}
          decided={decided}
          moving={noVerdict}
        />
        <LiftTile
          title="Orders per recommendation lift"
          unit="Attributed orders per recommendation seen (per shelf, not per shopper)"
          lift={{ value: data.lift.ordersPerRecommendation, ci95: data.lift.ordersPerRecommendationCi95 ?? null }}
          decided={decided}
          moving={noVerdict}
        />
      </div>
      <TableWrap label="Results per arm">
        <table>
          <caption>Results per arm since {day(data.since)}</caption>
          <thead>
            <tr>
              <th scope="col">Arm</th>
              <th scope="col">Shoppers</th>
              <th scope="col">Recommendations</th>
              <th scope="col">Impressions</th>
              <th scope="col">Clicks</th>
              <th scope="col">CTR</th>
              <th scope="col">Attributed orders</th>
              <th scope="col">{inCurrency("Revenue")}</th>
            </tr>
          </thead>
          <tbody>
            {data.arms.map((arm) => (
              <tr key={arm.arm}>
                <th scope="row">{arm.arm}</th>
                <td>{whole(arm.customers)}</td>
                <td>{whole(arm.recommendations)}</td>
                <td>{whole(arm.impressions)}</td>
                <td>{whole(arm.clicks)}</td>
                <td>{percent(arm.clickThroughRate, 2)}</td>
                <td>{whole(arm.attributedOrders)}</td>
                <td>{money(arm.attributedRevenue)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <div class="columns">
        <BarChart
          title="Click-through rate by arm"
          // An arm without impressions has no click-through rate: "–", as the table above says, not 0%.
          bars={data.arms.map((arm) => ({ label: arm.arm, value: arm.clickThroughRate }))}
          format={(value) => percent(value, 2)}
          headings={{ label: "Arm", value: "Click-through rate" }}
        />
        <BarChart
          title="Attributed orders per recommendation seen (per shelf, not per shopper)"
          bars={data.arms.map((arm) => ({ label: arm.arm, value: perRecommendation(arm) }))}
          format={(value) => value.toFixed(3)}
          headings={{ label: "Arm", value: "Attributed orders per recommendation seen" }}
        />
      </div>
      {/* Only when a shelf named its placement: one row group for "(no placement named)" would repeat the table above. */}
      {data.placements?.some((placement) => placement.placement !== null) && (
        <TableWrap label="Per placement">
          <table>
            <caption>Per placement</caption>
            <thead>
              <tr>
                <th scope="col">Placement</th>
                <th scope="col">Arm</th>
                <th scope="col">Shoppers</th>
                <th scope="col">Impressions</th>
                <th scope="col">Clicks</th>
                <th scope="col">CTR</th>
                <th scope="col">Attributed orders</th>
                <th scope="col">{inCurrency("Revenue")}</th>
              </tr>
            </thead>
            <tbody>
              {data.placements.flatMap((placement) =>
                placement.arms.map((arm) => (
                  <tr key={`${placement.placement}:${arm.arm}`}>
                    <th scope="row">{placement.placement ?? "(no placement named)"}</th>
                    <td>{arm.arm}</td>
                    <td>{whole(arm.customers)}</td>
                    <td>{whole(arm.impressions)}</td>
                    <td>{whole(arm.clicks)}</td>
                    <td>{percent(arm.clickThroughRate, 2)}</td>
                    <td>{whole(arm.attributedOrders)}</td>
                    <td>{money(arm.attributedRevenue)}</td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </TableWrap>
      )}
    </>
  );
}
