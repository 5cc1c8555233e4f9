// The customer page's two live views: P(alive) and cadence over time, recomputed from the order history
// at past dates (GET /v1/customers/:id/history), drawn with the order dates marked and the fading and
// lapsed lines; and what this shopper sees now (GET /v1/customers/:id/shelf), rendered by the
// storefront widget's own shelf with its reasons.
import { count, day, percent, ratio, words } from "../api.ts";
import { TimeChart, type TimeMark } from "../charts.tsx";
import { ShelfPreview } from "../shelf-preview.tsx";
import { Loading, ProblemNote, useData } from "../ui.tsx";

interface HistoryPoint {
  at: string;
  kind: "before_order" | "order" | "week" | "month" | "now" | "stage";
  probabilityAlive: number;
  expectedIntervalDays: number;
  daysSinceLast: number;
  overdueRatio: number;
  stage: string;
  /** `one_time_…` while they had one order: the stage went by the days since it, not by P(alive). */
  stageReason: string;
  valueTier: string;
  clv12: number;
}
interface HistoryAnswer {
  customerId: string;
  modelsFittedAt: string | null;
  thresholds: { fadingBelowProbabilityAlive: number; lapsedBelowProbabilityAlive: number } | null;
  orders: number;
  truncated: boolean;
  points: HistoryPoint[];
  message?: string;
}

const channelNames: Record<string, string> = { web: "Web", store: "Store", app: "App", phone: "Phone" };

/** The identifier kinds a person recognises a customer by, in the order the heading names them. */
const nameKinds = ["email", "loyalty", "phone", "account", "card"];

/**
 * Who the customer is, as a person at the till would recognise them: the first two kinds of identifier
 * they hold, masked as the API returns them ("e******@post.org · loyalty ****0002"). A customer holding
 * none (a guest) is named by the identifiers seen on their orders, said to be unverified; null: none.
 */
export function customerName(identities: { kind: string; masked: string; trust: string; shared: boolean }[]) {
  const usable = identities.filter(
    (identity) => !identity.shared && identity.masked && nameKinds.includes(identity.kind),
  );
  const held = usable.filter((identity) => identity.trust === "verified");
  const named = held.length > 0 ? held : usable;
  const chosen = nameKinds
    .map((kind) => named.find((identity) => identity.kind === kind))
    .filter((identity) => identity !== undefined)
    .slice(0, 2);
  if (chosen.length === 0) return null;
  const name = chosen
    .map((identity) => (identity.kind === "email" ? identity.masked : `${identity.kind} ${identity.masked}`))
    .join(" · ");
  return held.length > 0 ? name : `${name} (unverified)`;
}

/** The figures' words, for a reader who does not know them: open under the tiles, on a phone too. */
export function TermsExplained() {
  return (
    <details class="terms">
      <summary>What these mean</summary>
      <dl>
        <dt>P(alive)</dt>
        <dd>
          The chance that they are still buying here rather than gone for good, from how often they have bought and how
          long it has been since their last order.
        </dd>
        <dt>Overdue ratio</dt>
        <dd>
          Days since their last order divided by their usual days between orders: 1 means an order is due now, 2 means
          twice their usual gap has passed. Per category, the same for that category.
        </dd>
        <dt>Stage</dt>
        <dd>
          <strong>new</strong>: one order so far, placed within the time most customers take to come back;{" "}
          <strong>active</strong>: buying on their rhythm ("alive and on cadence"); <strong>fading</strong>: P(alive)
          has dropped below the fading line ("slipping"), a good time for a nudge; <strong>lapsed</strong>: P(alive) is
          below the lapsed line ("low probability alive"): they have probably stopped. With one order there is no rhythm
          of their own yet: they are fading, then lapsed, by the days since that order.
        </dd>
        <dt>CLV</dt>
        <dd>
          What they are expected to spend over the next 12 (or 24) months, already lowered by the chance they stop. With
          one or two days of orders it rests mostly on all customers' averages, as its tile says.
        </dd>
      </dl>
    </details>
  );
}

const kindNotes: Record<string, string> = {
  before_order: ", just before an order",
  order: ", just after an order",
  now: ", now",
  stage: ", when the stage changed",
};

/** Where the stage changed along the history: the first point and each point whose stage differs from the one before. */
function stageChanges(points: HistoryPoint[]) {
  return points.filter((point, index) => index === 0 || points[index - 1]?.stage !== point.stage);
}

export function CustomerHistory({
  customerId,
  orders,
  oneTimeReturnDays,
}: {
  customerId: string;
  /** The orders the page already shows (channel and time), marked along the charts. */
  orders: { placedAt: string; channel: string }[];
  /** A one-time buyer's stage windows (the profile's oneTimeReturnDays): their stage is not drawn at P(alive) lines. */
  oneTimeReturnDays: { usual: number; late: number; sinceFirstPurchase: number } | null;
}) {
  const history = useData<HistoryAnswer>(`/v1/customers/${encodeURIComponent(customerId)}/history`);
  if (history.loading && !history.data) return <Loading what="the customer's history" />;
  if (history.problem) return <ProblemNote problem={history.problem} />;
  const data = history.data;
  if (!data) return null;
  if (data.points.length === 0 || !data.thresholds)
    return (
      <section aria-labelledby="history-title">
        <h2 id="history-title">P(alive) and cadence over time</h2>
        <div class="empty">
          <p>
            {data.message ?? "No history to chart."} Start it from <a href="/console/models">Models</a>.
          </p>
        </div>
      </section>
    );
  const points = data.points.map((point) => ({ ...point, time: Date.parse(point.at) }));
  const from = points[0]!.time;
  const to = points.at(-1)!.time;
  const marks: TimeMark[] = orders
    .map((order) => ({ at: Date.parse(order.placedAt), channel: order.channel }))
    .filter((order) => order.at >= from && order.at <= to)
    .map((order) => ({
      at: order.at,
      tone: `mark-${order.channel}`,
      label: `${channelNames[order.channel] ?? order.channel} order`,
    }));
  const note = (point: HistoryPoint) => `${point.stage}${kindNotes[point.kind] ?? ""}`;
  const { fadingBelowProbabilityAlive: fading, lapsedBelowProbabilityAlive: lapsed } = data.thresholds;
  const changes = stageChanges(data.points);
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">P(alive) and cadence over time</h2>
      <p class="muted">
        What Patron would have said at each date: recomputed from the orders placed by then, with the models of the last
        nightly run (fitted {day(data.modelsFittedAt)}), at each purchase, weekly or monthly between, at each change of
        stage, and now.
        {data.truncated && ` Only the ${data.orders.toLocaleString("en-US")} most recent orders are counted.`}
      </p>
      <div class="chart-pair">
        <TimeChart
          title="P(alive) over time"
          from={from}
          to={to}
          max={1}
          format={(value) => percent(value)}
          series={[
            {
              name: "P(alive)",
              tone: "series-a",
              points: points.map((point) => ({ at: point.time, value: point.probabilityAlive, note: note(point) })),
            },
          ]}
          thresholds={
            oneTimeReturnDays
              ? []
              : [
                  { value: fading, label: `Fading below ${percent(fading)}`, tone: "threshold-warn" },
                  { value: lapsed, label: `Lapsed below ${percent(lapsed)}`, tone: "threshold-danger" },
                ]
          }
          marks={marks}
        >
          {oneTimeReturnDays && (
            <p class="muted small caption">
              With one order there is no rhythm of their own to judge by: a one-time buyer is new for{" "}
              {count(oneTimeReturnDays.usual, "day")} after it (half of the customers who came back did by then), fading
              until {count(oneTimeReturnDays.late, "day")} (90% had), lapsed after. P(alive) draws no stage line here.
            </p>
          )}
        </TimeChart>
        <TimeChart
          title="Cadence over time"
          from={from}
          to={to}
          format={(value) => `${Math.round(value)} d`}
          series={[
            {
              name: "Expected days between orders",
              tone: "series-b",
              points: points.map((point) => ({ at: point.time, value: point.expectedIntervalDays })),
            },
            {
              name: "Days since the last order",
              tone: "series-c",
              points: points.map((point) => ({
                at: point.time,
                value: point.daysSinceLast,
                note: `overdue ratio ${ratio(point.overdueRatio)}`,
              })),
            },
          ]}
          marks={marks}
        >
          <p class="muted small caption">
            {oneTimeReturnDays
              ? "With one order, the expected interval drawn is all customers' usual one, not theirs: their stage goes by the days since that order alone."
              : "Overdue when the days since the last order climb above the customer's own interval (an overdue ratio above 1)."}
          </p>
        </TimeChart>
      </div>
      <h3>Stage changes</h3>
      <p class="muted small caption">
        P(alive): the chance they are still buying; overdue ratio: days since the last order ÷ their usual days between
        orders.
      </p>
      <ol class="stage-changes">
        {changes.map((point) => (
          <li key={point.at}>
            <span class={`badge stage-${point.stage}`}>{point.stage}</span> from {day(point.at)}{" "}
            <span class="muted small">
              {point.stageReason.startsWith("one_time_")
                ? `(${count(point.daysSinceLast, "day")} after their one order)`
                : `(P(alive) ${percent(point.probabilityAlive)}, overdue ratio ${ratio(point.overdueRatio)})`}
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}

interface ShelfItem {
  id: string;
  title: string;
  url: string | null;
  imageUrl: string | null;
  price: number;
  listPrice: number;
  categoryId: string;
  reason: string;
}
interface ShelfAnswer {
  customerId: string;
  storefrontAccount: boolean;
  arm: "personalized" | "holdout" | "anonymous";
  customerKnown: boolean;
  categories: { id: string; name: string; reason: string }[];
  items: ShelfItem[];
}

const shelfLimit = 8;

/** What each arm of the holdout experiment means, in a line. */
const armNotes: Record<ShelfAnswer["arm"], string> = {
  personalized:
    "They get the personalized shelf; a small holdout group gets the popular shelf instead, so the experiment can measure what personalization adds.",
  holdout:
    "They are in the holdout group: they get the popular shelf, so the experiment can measure what personalization adds.",
  anonymous: "Not signed in online: the popular shelf, outside the experiment.",
};

/** Why this shelf, in words: which arm the shopper is in, or why the storefront cannot personalize. */
function shelfExplanation(shelf: ShelfAnswer): string {
  if (!shelf.storefrontAccount)
    return "This customer has no storefront account, so the shop cannot recognise them online: it shows them the popular shelf.";
  if (!shelf.customerKnown)
    return "Signed in, this customer has no purchase history Patron can use yet: the shop shows them the popular shelf.";
  if (shelf.arm === "holdout")
    return "This shopper is in the holdout group: the shop shows them the popular shelf, so the experiment can measure what personalization adds.";
  return "Their personalized shelf, as the shop shows it when they are signed in, with the published rules applied.";
}

export function SeesNow({ customerId, currency }: { customerId: string; currency: string }) {
  const shelf = useData<ShelfAnswer>(`/v1/customers/${encodeURIComponent(customerId)}/shelf?limit=${shelfLimit}`);
  // An item's category by the name the shelf gives it (the item itself carries only the id).
  const categoryNames = new Map((shelf.data?.categories ?? []).map((category) => [category.id, category.name]));
  return (
    <section aria-labelledby="sees-now-title" class="sees-now">
      <h2 id="sees-now-title">What this shopper sees now</h2>
      {shelf.loading && !shelf.data ? (
        <Loading what="the shopper's shelf" />
      ) : shelf.problem ? (
        <ProblemNote problem={shelf.problem} />
      ) : shelf.data ? (
        <>
          <p class="muted">
            {shelfExplanation(shelf.data)} Rendered by the storefront widget itself; nothing is recorded (no impression,
            no recommendation id).
          </p>
          {shelf.data.items.length === 0 ? (
            <p class="muted">The shelf is empty: the catalog has no product to show.</p>
          ) : (
            <ShelfPreview
              title={shelf.data.customerKnown ? "Picked for you" : "Popular right now"}
              shelf={{
                recommendationId: "",
                arm: shelf.data.arm,
                customerKnown: shelf.data.customerKnown,
                items: shelf.data.items,
              }}
              limit={shelfLimit}
              currency={currency}
            />
          )}
          <div class="columns">
            <div>
              <h3>Why these items</h3>
              <ol class="why" aria-label="Items and their reasons">
                {shelf.data.items.map((item) => (
                  <li key={item.id}>
                    <span class="item-title">{item.title}</span>{" "}
                    <span class="muted small">({categoryNames.get(item.categoryId) ?? item.categoryId})</span>
                    <br />
                    <span class="reason">{item.reason}</span>
                  </li>
                ))}
              </ol>
            </div>
            <div>
              <h3>
                {shelf.data.customerKnown && shelf.data.arm !== "holdout"
                  ? "Categories ranked for them"
                  : "Categories of the popular shelf"}
              </h3>
              <ol class="why" aria-label="Categories and their reasons">
                {shelf.data.categories.map((category) => (
                  <li key={category.id}>
                    <span class="item-title">{category.name}</span>
                    <br />
                    <span class="reason">{category.reason}</span>
                  </li>
                ))}
              </ol>
              <p class="muted small">
                Experiment arm: {words(shelf.data.arm)}. {armNotes[shelf.data.arm]}
              </p>
            </div>
          </div>
        </>
      ) : null}
    </section>
  );
}
