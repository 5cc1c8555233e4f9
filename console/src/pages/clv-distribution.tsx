// The Overview's CLV distribution: scored customers per log-spaced bucket of 12-month CLV, from the
// nightly rollup (GET /v1/admin/insights/clv-distribution), with a caption saying how concentrated value is.
import { inCurrency, money, percent } from "../api.ts";
import { Histogram } from "../charts.tsx";
import { Loading, ProblemNote, useData } from "../ui.tsx";

interface ClvBucket {
  from: number;
  to: number | null;
  customers: number;
  clv12: number;
}
interface ClvDistributionAnswer {
  customers: number;
  clv12: number;
  buckets: ClvBucket[];
  modelRunAt: string | null;
  message?: string;
}

const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export function bucketLabel(bucket: Pick<ClvBucket, "from" | "to">): string {
  if (bucket.to === null) return `${compact.format(bucket.from)}+`;
  if (bucket.from === 0) return `<${compact.format(bucket.to)}`;
  return `${compact.format(bucket.from)}–${compact.format(bucket.to)}`;
}

/** The axis labels: each bucket's lower edge, and the top bucket's upper edge unless it is open. */
function bucketEdges(buckets: Pick<ClvBucket, "from" | "to">[]): string[] {
  const edges = buckets.map((bucket) => compact.format(bucket.from));
  const top = buckets.at(-1)?.to;
  return top == null ? edges : [...edges, compact.format(top)];
}

/**
 * The highest buckets that hold at least a tenth of the customers, and the share of all CLV they carry:
 * the sentence under the chart.
 */
function concentration(answer: ClvDistributionAnswer) {
  let customers = 0;
  let clv12 = 0;
  let from = 0;
  for (const bucket of [...answer.buckets].reverse()) {
    if (customers >= answer.customers * 0.1) break;
    customers += bucket.customers;
    clv12 += bucket.clv12;
    from = bucket.from;
  }
  return { customers, clv12, from };
}

export function ClvDistribution() {
  const answer = useData<ClvDistributionAnswer>("/v1/admin/insights/clv-distribution");
  if (answer.loading && !answer.data) return <Loading what="the CLV distribution" />;
  if (answer.problem) return <ProblemNote problem={answer.problem} />;
  const data = answer.data;
  if (!data || data.buckets.length === 0)
    return (
      <div class="empty">
        <p>{data?.message ?? "No CLV distribution yet: run the nightly job."}</p>
      </div>
    );
  const top = concentration(data);
  return (
    <Histogram
      title="Customers by 12-month CLV"
      bars={data.buckets.map((bucket) => ({
        label: bucketLabel(bucket),
        value: bucket.customers,
        note: `${money(bucket.clv12)} of CLV`,
      }))}
      edges={bucketEdges(data.buckets)}
      format={(value) => value.toLocaleString("en-US")}
      headings={{ bucket: "12-month CLV", value: "Customers", note: inCurrency("Their 12-month CLV together") }}
    >
      <p class="muted small caption">
        {data.customers.toLocaleString("en-US")} scored customers by their expected spend over the next 12 months, in
        buckets that each span 2 to 2.5 times the one before (so a long tail fits on one axis). The{" "}
        {percent(top.customers / data.customers)} in the buckets from {top.from.toLocaleString("en-US")} up carry{" "}
        {percent(data.clv12 > 0 ? top.clv12 / data.clv12 : 0)} of the {money(data.clv12)} total.
      </p>
    </Histogram>
  );
}
