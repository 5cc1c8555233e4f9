// Customers: the scored customers to act on (GET /v1/admin/customers: filters, sort, keyset "Next page",
// and the same list as a CSV download with format=csv); look one up by email, phone, loyalty number or
// account id (POST /v1/customers/lookup, the identifier hashed exactly as ingestion hashes it) or open one
// by customer id, then the customer 360 at /console/customers/:id (GET /v1/customers/:id): linked
// identifiers (masked, with trust), the web and store order timeline, CLV, tier, cadence, P(alive),
// discount sensitivity, categories with price band and lapse, P(alive) and cadence over time and what
// the shopper sees now (customer-360.tsx); export (GET …/export, downloaded as JSON) and erase (DELETE,
// after a confirmation). A lookup that finds nobody (the identifier is shared, or was only seen
// unverified) lists the records holding it (POST /v1/customers/holders), for a privacy request. "Save as
// audience" and the saved audiences are in ./audiences.tsx.
import { signal } from "@preact/signals";
import { useEffect, useLayoutEffect, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { trimPadding } from "../../../worker/core/identity/normalize.ts";
import { type OfferGuidance, offerMessages } from "../../../worker/core/models/preferences.ts";
import {
  ApiProblem,
  alivePercent,
  api,
  checkDownload,
  count,
  dateTime,
  day,
  exportMatchKeys,
  inCurrency,
  money,
  moneyIn,
  nextOrder,
  percent,
  ratio,
  timesIn,
  whole,
  words,
} from "../api.ts";
import { CatalogSuggestions, useCatalogTargets } from "../catalog-targets.tsx";
import { clvBasis } from "../profile-words.ts";
import {
  Confirm,
  keepInEntry,
  keptInEntry,
  Loading,
  PageHeader,
  ProblemNote,
  TableWrap,
  useData,
  useFocusFollows,
} from "../ui.tsx";
import { Audiences, SaveAudience } from "./audiences.tsx";
import { CustomerHistory, customerName, SeesNow, TermsExplained } from "./customer-360.tsx";

/** The customer just erased, announced on the lookup page it returns to until that page is left. */
const erased = signal<string | null>(null);

const kinds = [
  { value: "email", label: "Email" },
  { value: "phone", label: "Phone" },
  { value: "loyalty", label: "Loyalty number" },
  { value: "account", label: "Account id" },
  { value: "customer", label: "Customer id (c_…)" },
];

/** The lookup form as it was left, kept in the history entry (never in the address: an email stays out of URLs). */
const keptLookup = () => keptInEntry<{ kind: string; value: string }>("customerLookup");

export function CustomersPage() {
  const { route } = useLocation();
  // Back from the customer a lookup opened finds the form as it was.
  const [kind, setKind] = useState(() => keptLookup()?.kind ?? "email");
  const [value, setValue] = useState(() => keptLookup()?.value ?? "");
  useLayoutEffect(() => keepInEntry("customerLookup", { kind, value }), [kind, value]);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const [holders, setHolders] = useState<Holders | null>(null);
  const [busy, setBusy] = useState(false);
  // The erasure's notice is said once: leaving the page clears it.
  useEffect(
    () => () => {
      erased.value = null;
    },
    [],
  );
  // The last lookup's answer was about the value it asked for: typing another one clears it.
  const forgetAnswer = () => {
    setProblem(null);
    setHolders(null);
  };
  async function lookUp(event: Event) {
    event.preventDefault();
    if (busy) return;
    setProblem(null);
    setHolders(null);
    // Only spaces pass the field's `required`: said here in the form's words, not as the API's 400.
    if (!trimPadding(value)) {
      setProblem(new ApiProblem(400, "invalid_request", "Type the identifier's value: it is only spaces now."));
      return;
    }
    setBusy(true);
    try {
      // A customer id (from a customer page or the list) opens that customer; a merged-away id, its survivor.
      // An identifier goes in the body, not the URL: an email or phone number stays out of request logs.
      const found =
        kind === "customer"
          ? await api<Customer>("GET", `/v1/customers/${encodeURIComponent(trimPadding(value))}`)
          : await api<Customer>("POST", "/v1/customers/lookup", { kind, value: trimPadding(value) });
      route(`/console/customers/${encodeURIComponent(found.customerId)}`);
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error)));
      // Holders are listed for an identifier that identifies nobody; a customer id has none.
      if (error instanceof ApiProblem && error.status === 404 && kind !== "customer")
        setHolders(await holdersOf(kind, trimPadding(value)));
    } finally {
      setBusy(false);
    }
  }
  return (
    <section>
      <PageHeader title="Customers">
        <p class="muted">
          Look a customer up by an identifier they use. Patron keeps no raw email or phone: the value is hashed the same
          way orders are, and only a customer who verifiably holds it is found.
        </p>
      </PageHeader>
      {erased.value && (
        <p role="status" class="card">
          Customer {erased.value} was erased.
        </p>
      )}
      <form class="card lookup" onSubmit={lookUp}>
        <div class="field">
          <label for="lookup-kind">Identifier</label>
          <select
            id="lookup-kind"
            value={kind}
            onChange={(event) => {
              setKind((event.target as HTMLSelectElement).value);
              forgetAnswer();
            }}
          >
            {kinds.map((option) => (
              <option key={option.value} value={option.value}>
                {option.label}
              </option>
            ))}
          </select>
        </div>
        <div class="field grow">
          <label for="lookup-value">Value</label>
          <input
            id="lookup-value"
            required
            value={value}
            autocomplete="off"
            aria-describedby="lookup-value-hint"
            onInput={(event) => {
              setValue((event.target as HTMLInputElement).value);
              forgetAnswer();
            }}
          />
          <span id="lookup-value-hint" class="muted small">
            The whole value, as the customer gives it: there is no partial search. To open a customer by their id (c_…,
            as on a customer's page and in the list below), choose Customer id as the identifier.
          </span>
        </div>
        {/* aria-disabled, not disabled: a disabled button would drop the keyboard's focus to the page. */}
        <button type="submit" class="primary" aria-disabled={busy}>
          {busy ? "Looking up…" : "Look up"}
        </button>
      </form>
      {problem && (
        <ProblemNote
          problem={
            holders?.holders.length
              ? withoutHoldersHint(problem)
              : kind === "customer"
                ? withCustomerIdHint(problem, trimPadding(value))
                : problem
          }
        />
      )}
      {holders && holders.holders.length > 0 && <HolderList holders={holders} />}
      {holders?.suppressed && holders.holders.length === 0 && (
        <p class="card" role="status">
          This {kindName(holders.kind)} is on the suppression list: a customer who held it was erased, and orders and
          sign-ins carrying it are not stored.
        </p>
      )}
      <CustomerList />
      <Audiences />
    </section>
  );
}

/** The lookup's 404 without its pointer to GET /v1/customers/holders: the page lists the holders itself. */
function withoutHoldersHint(problem: ApiProblem): ApiProblem {
  const message = problem.message.replace(/ To find every customer seen with it[^.]*\.$/, " They are listed below.");
  return new ApiProblem(problem.status, problem.code, message, problem.issues, problem.requestId);
}

/**
 * A customer id that opens nobody, with what to do about it: the API's 404 says only "No customer with id
 * …", and at the till the id is usually mistyped, cut short, or not a customer id at all.
 */
function withCustomerIdHint(problem: ApiProblem, id: string): ApiProblem {
  if (problem.status !== 404) return problem;
  const hint = !id.startsWith("c_")
    ? `“${id}” is not a customer id, which starts with c_: to find someone by an email, phone, loyalty number or account id, choose that identifier.`
    : /^c_[0-9a-f]{20}$/.test(id)
      ? "Check it against the customer's page or the list, or look them up by an identifier they use: a customer erased since has no page."
      : `A customer id is c_ and 20 characters (this one has ${id.length - 2}), as on the customer's page and in the list: check it was copied in full.`;
  return new ApiProblem(problem.status, problem.code, `${problem.message} ${hint}`, problem.issues, problem.requestId);
}

const kindName = (kind: string) => kinds.find((option) => option.value === kind)?.label.toLowerCase() ?? kind;

interface Holders {
  kind: string;
  masked: string;
  shared: boolean;
  /** On the suppression list: a customer who held it was erased. */
  suppressed: boolean;
  truncated: boolean;
  holders: {
    customerId: string;
    held: boolean;
    trust: string;
    orders: number;
    firstSeenAt: string | null;
    lastSeenAt: string | null;
  }[];
}

/** Every customer holding an identifier or seen with it; null when that cannot be read (the lookup's note stands). */
async function holdersOf(kind: string, value: string): Promise<Holders | null> {
  try {
    return await api<Holders>("POST", "/v1/customers/holders", { kind, value });
  } catch {
    return null;
  }
}

/** The records an identifier that identifies nobody is on: each customer's page has its export and erase. */
function HolderList({ holders }: { holders: Holders }) {
  const noun = kindName(holders.kind);
  return (
    <div class="card">
      <h2>Records holding this {noun}</h2>
      <p class="muted">
        For a privacy request: every customer seen with <code>{holders.masked}</code>
        {holders.shared ? ", which several people share" : ""}. Check each is the person asking, then open it to export
        and erase it; list them all before erasing any.
      </p>
      <TableWrap label="Records holding this identifier">
        <table>
          <thead>
            <tr>
              <th scope="col">Customer</th>
              <th scope="col">Link</th>
              <th scope="col">Orders with it</th>
              <th scope="col">First seen</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {holders.holders.map((holder) => (
              <tr key={holder.customerId}>
                <td>
                  <a href={`/console/customers/${encodeURIComponent(holder.customerId)}`}>{holder.customerId}</a>
                </td>
                <td>
                  <span class={`badge ${holder.trust === "verified" ? "ok" : "warn"}`}>
                    {holder.held ? "holds it" : `seen ${holder.trust}`}
                  </span>
                </td>
                <td>{whole(holder.orders)}</td>
                <td>{day(holder.firstSeenAt)}</td>
                <td>{day(holder.lastSeenAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {holders.truncated && (
        <p class="muted small">Only the first {count(holders.holders.length, "customer")} are listed.</p>
      )}
    </div>
  );
}

interface ListedCustomer {
  customerId: string;
  stage: string;
  valueTier: string;
  discountSensitivity: string;
  clv12: number;
  clv24: number;
  clvAtStake: number;
  probabilityAlive: number;
  overdueRatio: number | null;
  expectedNextOrderAt: string | null;
  offer: string;
  offerGuidance: string;
  scoredAt: string;
  /** Days they bought on; 1: a one-time buyer, with no rhythm of their own. */
  purchaseDays: number | null;
}
interface CustomerListPage {
  customers: ListedCustomer[];
  sort: string;
  next: string | null;
}

const filterOptions = [
  { name: "stage", label: "Stage", values: ["new", "active", "fading", "lapsed"] },
  { name: "valueTier", label: "Tier", values: ["top", "high", "medium", "low"] },
  { name: "discountSensitivity", label: "Discount sensitivity", values: ["full_price", "mixed", "deal_seeker"] },
] as const;
const sorts = [
  { value: "-clvAtStake", label: "CLV at stake, highest first" },
  { value: "-overdueRatio", label: "Overdue ratio, most overdue first" },
  { value: "probabilityAlive", label: "P(alive), lowest first" },
  { value: "-probabilityAlive", label: "P(alive), highest first" },
  { value: "expectedNextOrderAt", label: "Expected next order, soonest first (lapsed left out)" },
];
const pageSize = 25;
const atStakeTitle = "A year of the customer's usual orders × (1 − P(alive)): what is lost if they have gone";
const clvTitle = "Expected spend over the next 12 months, already lowered by the chance they have stopped";
const tierTitle =
  "By 12-month CLV, not past spend: top is the highest 10% of customers, high the next 20%, medium the next 30%, low the rest and anyone expected to spend under a tenth of a typical purchase day";

/** The cursors of the pages read before the one shown, for the list `query` names. */
interface Paging {
  query: string;
  cursors: string[];
}

/** The list query for the filters and sort (without cursor, limit or format). */
function listQuery(filters: Record<string, string>, sort: string): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value.trim()) query.set(name, value.trim());
  query.set("sort", sort);
  return query.toString();
}

const filterNames = ["stage", "valueTier", "discountSensitivity", "lapsedCategory"] as const;
const defaultSort = "-clvAtStake";

/**
 * The customer list's address as last shown (its filters and sort), for the customer page's way back:
 * the list as it was left, not a fresh one.
 */
let listAddress = "/console/customers";

/**
 * The customer a row of the list is opening: their page marks its own history entry as opened from the
 * list (`fromList`), and its link back is then the browser's Back. Set only by a plain click, which the
 * router follows in this tab, and taken by the next customer page drawn.
 */
let openingFromList: string | null = null;

/** The pages read, kept in the history entry: Back to the list, or a reload, shows the page it left. */
function restoredPaging(query: string): Paging {
  const kept = keptInEntry<Paging>("customerListPaging");
  return kept?.query === query ? kept : { query, cursors: [] };
}

/** The customer page's way back: the list's page it was opened from, or the list as last shown. */
function BackToList({ customerId }: { customerId: string }) {
  // Taken as the page is committed, not after paint: a Back pressed before a deferred effect ran would
  // leave the mark for this customer's next page, opened from anywhere, and mark the list's entry.
  useLayoutEffect(() => {
    const opening = openingFromList;
    openingFromList = null;
    if (opening === customerId) keepInEntry("fromList", true);
  }, [customerId]);
  return (
    <p>
      <a
        href={listAddress}
        onClick={(event) => {
          if (keptInEntry<boolean>("fromList") !== true) return;
          // The entry before this one is the list's page it was opened from. The router's own click
          // handler (on window) would open the list anew.
          event.preventDefault();
          event.stopPropagation();
          history.back();
        }}
      >
        ← Look up another customer
      </a>
    </p>
  );
}

/**
 * The list's filters and sort live in the page's address (`/console/customers?stage=fading&sort=…`), so
 * a reload, a shared link or Back from a customer shows the same list; the cursors of the pages read
 * are kept in the history entry, so Back and a reload show the same page of it too.
 */
function CustomerList() {
  const { query: params, route, url } = useLocation();
  // A value the address holds that is no option (a hand-edited or old link: stage=bogus) is left out, as
  // the select shows it ("Any"), rather than sent for the API to refuse.
  const known = (name: string, value: string) =>
    filterOptions.every((option) => option.name !== name || (option.values as readonly string[]).includes(value));
  const filters: Record<string, string> = Object.fromEntries(
    filterNames.map((name) => [name, known(name, params[name] ?? "") ? (params[name] ?? "") : ""]),
  );
  const asked = sorts.some((option) => option.value === params.sort) ? (params.sort as string) : defaultSort;
  // Lapsed customers are not expected to order, so the next-order sort has none of them to list (the API
  // refuses the pair): the lapsed list keeps the default sort, and the page says why.
  const dueSortOfLapsed = filters.stage === "lapsed" && asked === "expectedNextOrderAt";
  const sort = dueSortOfLapsed ? defaultSort : asked;
  const query = listQuery(filters, sort);
  listAddress = url;
  // The cursors of the pages before this one (keyset paging goes forward; going back re-reads a kept
  // cursor), kept for the list they were read from: another filter or sort starts at page 1.
  const [paging, setPaging] = useState<Paging>(() => restoredPaging(query));
  useLayoutEffect(() => keepInEntry("customerListPaging", paging), [paging]);
  const cursors = paging.query === query ? paging.cursors : [];
  const setCursors = (next: string[]) => setPaging({ query, cursors: next });
  // Forgotten once the list changes (a filter replaces the entry, and its state with it), so coming back
  // to a list by its filters starts it at page 1.
  // Back or Forward to another list of this page (the Customers link pushed one) finds the pages read in
  // that entry.
  useEffect(() => setPaging((kept) => (kept.query === query ? kept : restoredPaging(query))), [query]);
  // The category box applies on Enter, on leaving it, on a suggestion picked, or by itself a moment
  // after the last key once it holds a catalog category's id or nothing: a half-typed name is not a
  // filter. What is typed but not yet applied gives way to the address when that changes (the
  // Customers link clears it).
  const applied = filters.lapsedCategory ?? "";
  const [typed, setTyped] = useState({ applied, text: applied });
  const category = typed.applied === applied ? typed.text : applied;
  // Once the address holds another category (the typed one applied, or the Customers link's none), the
  // box starts from it: the text typed before is not applied again.
  useEffect(() => setTyped((kept) => (kept.applied === applied ? kept : { applied, text: applied })), [applied]);
  // The catalog's categories nearest to what is typed (by id or name): "Jewellery" finds jewellery.
  const categorySuggestions = useCatalogTargets("category", category);
  const cursor = cursors.at(-1);
  const list = useData<CustomerListPage>(
    `/v1/admin/customers?${query}&limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
  );
  const show = (next: Record<string, string>, nextSort: string) => {
    const address = new URLSearchParams();
    for (const name of filterNames) if (next[name]?.trim()) address.set(name, next[name].trim());
    if (nextSort !== defaultSort) address.set("sort", nextSort);
    route(`/console/customers${address.size ? `?${address}` : ""}`, true);
  };
  const setFilter = (name: string, value: string) => show({ ...filters, [name]: value }, sort);
  useEffect(() => {
    const text = category.trim();
    if (text === applied.trim()) return;
    if (text !== "" && !categorySuggestions.some((target) => target.id === text)) return;
    const timer = setTimeout(() => setFilter("lapsedCategory", category), 400);
    return () => clearTimeout(timer);
  });
  const rows = list.data?.customers ?? [];
  // The page after the one asked for, once it has come: while another page loads, the list shown (and its
  // cursor) is the last page's, and following it would skip a page under the next page's number.
  const nextCursor = list.loading ? null : list.data?.next;
  const filtered = Object.values(filters).some((value) => value.trim());
  const matchKeys = exportMatchKeys.value;
  const csvAddress = `/v1/admin/customers?${query}&format=csv${matchKeys.length > 0 ? `&matchKeys=${matchKeys.join(",")}` : ""}`;
  // A download the API refuses fails in the browser's download bar, not on the page: the download is
  // asked for first and cut off once it is answered, so an ended session (the sign-in form) or a
  // refusal (said here) shows.
  const [exportProblem, setExportProblem] = useState<ApiProblem | null>(null);
  const exportCsv = async (event: MouseEvent) => {
    event.preventDefault();
    setExportProblem(null);
    try {
      // The download's own address, so a match key the deployment no longer enables is refused here too.
      await checkDownload(csvAddress);
    } catch (problem) {
      if (problem instanceof ApiProblem && problem.status !== 401) setExportProblem(problem);
      return;
    }
    const download = document.createElement("a");
    download.href = csvAddress;
    download.download = "patron-customers.csv";
    download.click();
  };
  // Sorted by the next order, the API leaves lapsed customers out: they are not expected to order.
  const dueSort = sort === "expectedNextOrderAt";
  return (
    <section aria-labelledby="customer-list-title">
      <div class="section-header">
        <h2 id="customer-list-title">Customers to act on</h2>
        <a
          class="button"
          href={csvAddress}
          download="patron-customers.csv"
          aria-describedby="csv-match-keys"
          onClick={exportCsv}
        >
          Export CSV
        </a>
      </div>
      {exportProblem && <ProblemNote problem={exportProblem} />}
      <p class="muted">
        As the last nightly run scored them. <strong>CLV at stake</strong> is a year of the customer's usual orders
        (expected order value × 365 ÷ their usual days between orders) × the chance they have stopped buying (1 −
        P(alive)): what is lost if they have gone, highest for a valuable regular who has gone quiet. The top of the
        default sort includes customers long gone (P(alive) near 0%), the hardest to win back: the Fading stage keeps
        those still within reach. <strong>12-month CLV</strong> is what they are still expected to spend, already
        lowered by that chance; the Overview adds it up over the fading and lapsed customers. The CSV holds the whole
        list with these filters and sort. <strong>P(alive)</strong> is the chance they are still buying; the{" "}
        <strong>overdue ratio</strong> is the days since their last order ÷ their usual days between orders (above 1:
        overdue). A customer with one order has no usual interval yet: the list says so instead (its sorts place them by
        all customers' interval, and the CSV's <code>purchaseDays</code> is 1), and their stage goes by the time since
        that order, not by P(alive), which stays high for them: fading once most customers who came back had, lapsed
        once nearly all had.
      </p>
      <p id="csv-match-keys" class="muted small">
        {matchKeys.length > 0
          ? `The CSV carries each customer's match keys for an email tool or ad platform: ${matchKeys.join(", ")} (those they hold alone, sent since EXPORT_MATCH_KEYS was set).`
          : "The CSV names customers by Patron's id only: to give an email tool or ad platform an account id, loyalty number or hashed email or phone to match on, the deployment sets EXPORT_MATCH_KEYS (docs/api.md, match keys in exports)."}
      </p>
      <form class="card filters" aria-label="Filter and sort customers" onSubmit={(event) => event.preventDefault()}>
        {filterOptions.map((filter) => (
          <div class="field" key={filter.name}>
            <label for={`filter-${filter.name}`}>{filter.label}</label>
            <select
              id={`filter-${filter.name}`}
              value={filters[filter.name]}
              onChange={(event) => setFilter(filter.name, (event.target as HTMLSelectElement).value)}
            >
              <option value="">Any</option>
              {filter.values.map((value) => (
                <option key={value} value={value}>
                  {words(value)}
                </option>
              ))}
            </select>
          </div>
        ))}
        <div class="field">
          <label for="filter-lapsedCategory">Lapsing in category (id)</label>
          <input
            id="filter-lapsedCategory"
            value={category}
            autocomplete="off"
            placeholder="a category id"
            aria-describedby="filter-lapsedCategory-hint"
            onInput={(event) => setTyped({ applied, text: (event.target as HTMLInputElement).value })}
            onChange={(event) => setFilter("lapsedCategory", (event.target as HTMLInputElement).value)}
          />
          <span id="filter-lapsedCategory-hint" class="muted small">
            Customers still buying overall who have stopped buying in this category. A category's name finds its id
            under the field; an id the catalog has applies as it is typed, any other on Enter.
          </span>
          <CatalogSuggestions
            targets={categorySuggestions}
            typed={category}
            fieldId="filter-lapsedCategory"
            pick={(id) => {
              setTyped({ applied, text: id });
              setFilter("lapsedCategory", id);
            }}
          />
        </div>
        <div class="field">
          <label for="list-sort">Sort</label>
          <select
            id="list-sort"
            value={sort}
            onChange={(event) => show(filters, (event.target as HTMLSelectElement).value)}
          >
            {sorts.map((option) => (
              <option
                key={option.value}
                value={option.value}
                disabled={option.value === "expectedNextOrderAt" && filters.stage === "lapsed"}
              >
                {option.label}
              </option>
            ))}
          </select>
        </div>
      </form>
      <SaveAudience filters={filters} />
      {dueSortOfLapsed && (
        <p class="muted small" role="status">
          Lapsed customers are not expected to order, so they cannot be sorted by their next order: this list is sorted
          by CLV at stake.
        </p>
      )}
      {dueSort && (
        <p class="muted small">
          Sorted by the next order, the list leaves lapsed customers out (they are not expected to order); the CSV does
          too. An audience saved from these filters holds them, as it would under any sort.
        </p>
      )}
      {list.loading && list.data && (
        // The rows shown are the last list's until the new one arrives: said, not passed off as the new one.
        <p class="muted small" role="status">
          Loading the customers for these filters…
        </p>
      )}
      {list.loading && !list.data ? (
        <Loading what="customers" />
      ) : list.problem ? (
        <ProblemNote problem={list.problem} />
      ) : rows.length === 0 ? (
        <div class="empty">
          {filtered || cursors.length > 0 ? (
            <p>No scored customer matches these filters. Clear a filter or choose another value.</p>
          ) : dueSort ? (
            <p>No scored customer is expected to order: every one is lapsed. Sort by another column to list them.</p>
          ) : (
            <p>
              No customer has been scored yet: the list fills after the nightly model run (start one from{" "}
              <a href="/console/models">Models</a> or the <a href="/console">Overview</a>).
            </p>
          )}
        </div>
      ) : (
        <div class={list.loading ? "stale" : undefined} aria-busy={list.loading}>
          <TableWrap label="Scored customers">
            <table class="customer-list">
              <caption class="visually-hidden">Scored customers, page {cursors.length + 1}</caption>
              <thead>
                <tr>
                  <th scope="col">Customer</th>
                  <th scope="col">Stage</th>
                  <th scope="col" title={tierTitle}>
                    Tier
                  </th>
                  <th scope="col">Discounts</th>
                  <th scope="col" title={atStakeTitle}>
                    {inCurrency("CLV at stake")}
                  </th>
                  <th scope="col" title={clvTitle}>
                    {inCurrency("12-month CLV")}
                  </th>
                  <th scope="col">P(alive)</th>
                  <th scope="col">Overdue ratio</th>
                  <th scope="col">Next order due</th>
                  <th scope="col">Offer</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr key={row.customerId}>
                    <td>
                      <a
                        href={`/console/customers/${encodeURIComponent(row.customerId)}`}
                        onClick={(event) => {
                          // A click the browser opens elsewhere (a new tab or window) leaves this page as it is.
                          const elsewhere =
                            event.ctrlKey || event.metaKey || event.shiftKey || event.altKey || event.button !== 0;
                          openingFromList = elsewhere ? null : row.customerId;
                        }}
                      >
                        {row.customerId}
                      </a>
                    </td>
                    <td>
                      {row.stage}
                      {row.purchaseDays === 1 && row.stage !== "new" && (
                        // Their P(alive) stays high: the stage goes by the time since that one order.
                        <span class="muted small"> by time since their one order</span>
                      )}
                    </td>
                    <td>{row.valueTier}</td>
                    <td>{words(row.discountSensitivity)}</td>
                    <td>{money(row.clvAtStake)}</td>
                    <td>{money(row.clv12)}</td>
                    <td>{alivePercent(row.probabilityAlive, row.clv12)}</td>
                    {row.purchaseDays === 1 ? (
                      // Their figures would be all customers' interval: said as on their own page.
                      <>
                        <td class="muted">one order</td>
                        <td class="muted">no date from one order</td>
                      </>
                    ) : (
                      <>
                        <td>{ratio(row.overdueRatio)}</td>
                        <td>{nextOrder(row.stage, row.expectedNextOrderAt)}</td>
                      </>
                    )}
                    <td>
                      <span class="small">{row.offerGuidance}</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          <nav class="pager" aria-label="Customer list pages">
            {/* aria-disabled, not disabled: the button just pressed keeps the keyboard's focus on the first page. */}
            <button
              type="button"
              aria-disabled={cursors.length === 0}
              onClick={() => cursors.length > 0 && setCursors(cursors.slice(0, -1))}
            >
              Previous page
            </button>
            <span class="muted">Page {cursors.length + 1}</span>
            <button
              type="button"
              aria-disabled={!nextCursor}
              onClick={() => nextCursor && setCursors([...cursors, nextCursor])}
            >
              Next page
            </button>
          </nav>
        </div>
      )}
    </section>
  );
}

interface Order {
  id: string;
  channel: string;
  storeId: string | null;
  placedAt: string;
  total: number;
  discountTotal: number;
  currency: string;
  lines: {
    productId: string;
    categoryId: string;
    /** From the catalog; null when it holds no such product or category. */
    productTitle: string | null;
    categoryName: string | null;
    quantity: number;
    unitPrice: number;
    listPrice: number;
  }[];
}
interface CategoryProfile {
  categoryId: string;
  expectedIntervalDays: number | null;
  overdueRatio: number | null;
  nextExpectedAt: string | null;
  probabilityActive: number | null;
  lapsed: boolean;
  priceBand: string | null;
  pricePercentile: number | null;
}
interface Profile {
  modelsFittedAt: string;
  /** "default": the last run could not fit the models, and every figure comes from placeholders. */
  modelsSource?: "fitted" | "default";
  clv12: number;
  clv24: number;
  probabilityAlive: number;
  probabilityPurchase90d: number;
  expectedPurchases90d: number;
  expectedOrderValue: number;
  cadence: {
    expectedIntervalDays: number | null;
    daysSinceLast: number | null;
    overdueRatio: number | null;
    nextExpectedAt: string | null;
    regularity: number | null;
  };
  stage: string;
  stageReason: string;
  /** A one-time buyer's stage is judged by these: days within which half (usual) and 90% (late) of returners came back. */
  oneTimeReturnDays: { usual: number; late: number; sinceFirstPurchase: number } | null;
  valueTier: string;
  discountSensitivity: string;
  /** The estimate the sensitivity is judged by: the customer's share shrunk toward the population's. */
  discountedShare: number | null;
  populationDiscountedShare: number | null;
  offerGuidance: string;
  channelMix: { shares: Record<string, number>; primary: string | null };
  categories: CategoryProfile[];
}
interface Customer {
  customerId: string;
  mergedFrom: string[];
  identities: { kind: string; masked: string; trust: string; shared: boolean }[];
  orders: Order[];
  summary: {
    orders: number;
    /** Days they bought on (orders on one day are one purchase day, as the models count them). */
    purchaseDays: number;
    spend: number;
    firstOrderAt: string | null;
    lastOrderAt: string | null;
    /** Orders per channel. */
    channels: Record<string, number>;
    /** Units bought, and of those bought below list price: the observed discount share. */
    units: number;
    discountedUnits: number;
    categories: {
      categoryId: string;
      categoryName: string | null;
      orders: number;
      /** Days it was bought on: on one day only, it has no rhythm of its own (never lapsed). */
      purchaseDays: number;
      spend: number;
      lastPurchaseAt: string | null;
    }[];
  } | null;
  profile: Profile | null;
}

const channelNames: Record<string, string> = { web: "Web", store: "Store", app: "App", phone: "Phone" };

export function CustomerPage() {
  const { params } = useRoute();
  const id = params.id ?? "";
  const customer = useData<Customer>(`/v1/customers/${encodeURIComponent(id)}`);
  // While another customer's page loads, the last customer's answer is kept: not to be shown (or exported,
  // or erased) under this customer's address. A merged-away id answers with its survivor.
  const forThisId = customer.data?.customerId === id || customer.data?.mergedFrom.includes(id);
  if (customer.loading && !forThisId) return <Loading what="the customer" />;
  if (customer.problem)
    return (
      <section>
        <BackToList customerId={id} />
        {/* A heading all the same: the focus, the tab's title and a screen reader's outline go by it. */}
        <PageHeader title={customer.problem.status === 404 ? "Customer not found" : "Customer not loaded"} />
        <ProblemNote problem={customer.problem} />
      </section>
    );
  const data = customer.data;
  if (!data) return null;
  return (
    <section>
      <BackToList customerId={id} />
      <PageHeader title={<CustomerTitle customer={data} />}>
        {data.mergedFrom.length > 0 && <p class="muted">Merged from {data.mergedFrom.join(", ")}.</p>}
        <p class="muted small">{timesIn()}</p>
      </PageHeader>
      <ProfileTiles profile={data.profile} summary={data.summary} />
      <TermsExplained />
      <div class="columns">
        <Identities identities={data.identities} />
        <Categories customer={data} />
      </div>
      <CustomerHistory
        customerId={data.customerId}
        orders={data.orders}
        oneTimeReturnDays={data.profile?.oneTimeReturnDays ?? null}
      />
      <Timeline orders={data.orders} total={data.summary?.orders ?? data.orders.length} />
      <SeesNow customerId={data.customerId} currency={data.orders[0]?.currency ?? "USD"} />
      <DataRights customerId={data.customerId} />
    </section>
  );
}

/** The heading: who the customer is in masked identifiers a person recognises, and their id, smaller. */
function CustomerTitle({ customer }: { customer: Customer }) {
  const name = customerName(customer.identities);
  if (!name) return <>Customer {customer.customerId}</>;
  return (
    <>
      {name} <span class="heading-id">Customer {customer.customerId}</span>
    </>
  );
}

function ProfileTiles({ profile, summary }: { profile: Profile | null; summary: Customer["summary"] }) {
  if (!profile)
    return (
      <div class="empty">
        <p>
          No scores for this customer yet: they appear after the next nightly model run (start one from{" "}
          <a href="/console/models">Models</a>).
        </p>
      </div>
    );
  const units = summary?.units ?? 0;
  const discountedUnits = summary?.discountedUnits ?? 0;
  // What they did (observed), then the estimate the sensitivity is judged by: with few units the
  // estimate leans on the population's share, so it can read 35% for a customer who never had a discount.
  const discountNotes = [
    units > 0
      ? `${discountedUnits.toLocaleString("en-US")} of ${count(units, "unit")} on discount (${percent(discountedUnits / units)})`
      : "no units bought yet",
    `sensitivity judged by an estimated ${percent(profile.discountedShare)}: their share pulled toward all customers' ${percent(profile.populationDiscountedShare)}, less the more they buy`,
  ];
  const tiles: [string, string, (string | string[])?][] = [
    [
      "CLV, 12 months",
      moneyIn(profile.clv12),
      [`24 months: ${moneyIn(profile.clv24)}`, ...clvBasis(summary?.purchaseDays ?? null)],
    ],
    ["Value tier", profile.valueTier],
    ["Stage", profile.stage, stageNotes(profile)],
    [
      "P(alive)",
      alivePercent(profile.probabilityAlive, profile.clv12),
      `P(order in 90 days): ${percent(profile.probabilityPurchase90d)}`,
    ],
    cadenceTile(profile),
    // A lapsed customer has probably stopped: a due date would read as a promise. A fading one may have:
    // their date holds only if they are still buying. A one-time buyer's date would come from all
    // customers' interval: their return is judged by the window under Stage.
    [
      "Next order expected",
      profile.stage === "lapsed"
        ? "not expected (lapsed)"
        : profile.oneTimeReturnDays
          ? "no date from one order"
          : nextOrder(profile.stage, profile.cadence.nextExpectedAt),
    ],
    ["Discount sensitivity", words(profile.discountSensitivity), discountNotes],
    ["Offer guidance", offerMessages[profile.offerGuidance as OfferGuidance] ?? words(profile.offerGuidance)],
    // A main channel only from 60% of orders: the counts say what a split looks like.
    [
      "Main channel",
      channelNames[profile.channelMix.primary ?? ""] ?? "none",
      Object.entries(summary?.channels ?? {})
        .filter(([, orders]) => orders > 0)
        .sort(([, a], [, b]) => b - a)
        .map(([channel, orders]) => `${(channelNames[channel] ?? channel).toLowerCase()} ${whole(orders)}`)
        .join(", ") || undefined,
    ],
    [
      "Lifetime spend",
      moneyIn(summary?.spend),
      `${count(summary?.orders ?? 0, "order")} since ${day(summary?.firstOrderAt)}`,
    ],
  ];
  return (
    <>
      {profile.modelsSource === "default" && (
        <p class="notice" role="note">
          <strong>Placeholder figures.</strong> The last nightly run had too little history to fit the models to this
          shop, so CLV, tier, stage, P(alive) and discount sensitivity below come from default parameters, not from its
          customers. Read them as rough until a run fits (<a href="/console/models">Models</a> says when).
        </p>
      )}
      <dl class="tiles">
        {tiles.map(([label, value, notes]) => (
          <div class="tile" key={label}>
            <dt>{label}</dt>
            <dd class="figure">{value}</dd>
            {(typeof notes === "string" ? [notes] : (notes ?? [])).map((note) => (
              <dd class="muted small" key={note}>
                {note}
              </dd>
            ))}
          </div>
        ))}
      </dl>
    </>
  );
}

/**
 * Their rhythm: the interval expected between their orders and how far past it they are. A one-time
 * buyer has none of their own; the interval the models give them is all customers', said as such.
 */
function cadenceTile(profile: Profile): [string, string, string[]?] {
  const { expectedIntervalDays, daysSinceLast, overdueRatio } = profile.cadence;
  if (profile.oneTimeReturnDays)
    return [
      "Cadence",
      "no rhythm yet (one order)",
      [
        `${count(profile.oneTimeReturnDays.sinceFirstPurchase, "day")} since their one order`,
        ...(expectedIntervalDays == null ? [] : [`all customers' usual interval: every ${expectedIntervalDays} days`]),
      ],
    ];
  return [
    "Cadence",
    expectedIntervalDays == null ? "–" : `every ${expectedIntervalDays} days`,
    overdueRatio == null
      ? undefined
      : [`${count(daysSinceLast ?? 0, "day")} since last (overdue ratio ${ratio(overdueRatio)})`],
  ];
}

/**
 * The stage's reason, and for a one-time buyer what it is judged by: not P(alive) or a rhythm of their
 * own (one order has none), but how long the customers who did come back took.
 */
function stageNotes(profile: Profile): string[] {
  const window = profile.oneTimeReturnDays;
  if (!window) return [words(profile.stageReason)];
  return [
    words(profile.stageReason),
    `bought on one day, ${count(window.sinceFirstPurchase, "day")} ago; half of the customers who came back did within ${count(window.usual, "day")}, 90% within ${count(window.late, "day")}`,
  ];
}

function Identities({ identities }: { identities: Customer["identities"] }) {
  return (
    <div>
      <h2>Linked identifiers</h2>
      <TableWrap label="Linked identifiers">
        <table>
          <thead>
            <tr>
              <th scope="col">Kind</th>
              <th scope="col">Identifier</th>
              <th scope="col">Trust</th>
            </tr>
          </thead>
          <tbody>
            {identities.map((identity) => (
              <tr key={`${identity.kind}:${identity.masked}:${identity.trust}`}>
                <td>{identity.kind}</td>
                <td>
                  <code>{identity.masked}</code>
                </td>
                <td>
                  <span class={`badge ${identity.trust === "verified" && !identity.shared ? "ok" : "warn"}`}>
                    {identity.shared ? "shared" : identity.trust}
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </div>
  );
}

function Categories({ customer }: { customer: Customer }) {
  const spend = new Map((customer.summary?.categories ?? []).map((category) => [category.categoryId, category]));
  // The catalog's name for each category, where it has one (the summary's, or an order line's).
  const names = new Map<string, string>();
  for (const line of customer.orders.flatMap((order) => order.lines))
    if (line.categoryName) names.set(line.categoryId, line.categoryName);
  for (const category of spend.values())
    if (category.categoryName) names.set(category.categoryId, category.categoryName);
  const profiled = customer.profile?.categories ?? [];
  // A one-time buyer's categories have no rhythm of their own either: an overdue ratio would be all customers'.
  const oneOrder = customer.profile?.oneTimeReturnDays != null;
  const ids = [...new Set([...profiled.map((category) => category.categoryId), ...spend.keys()])].sort(
    (a, b) => (spend.get(b)?.spend ?? 0) - (spend.get(a)?.spend ?? 0),
  );
  return (
    <div>
      <h2>Category affinities</h2>
      <TableWrap label="Category affinities">
        <table>
          <thead>
            <tr>
              <th scope="col">Category</th>
              <th scope="col">Orders</th>
              <th scope="col">{inCurrency("Spend")}</th>
              <th scope="col">Price band</th>
              <th scope="col">Lapse</th>
            </tr>
          </thead>
          <tbody>
            {ids.map((categoryId) => {
              const profile = profiled.find((category) => category.categoryId === categoryId);
              const stats = spend.get(categoryId);
              return (
                <tr key={categoryId}>
                  <td>{names.get(categoryId) ?? categoryId}</td>
                  <td>{stats?.orders ?? "–"}</td>
                  <td>{money(stats?.spend)}</td>
                  <td>{profile?.priceBand ?? "–"}</td>
                  <td>
                    {profile ? (
                      profile.lapsed ? (
                        <span class="badge warn">lapsed</span>
                      ) : (
                        <span class="muted small">
                          {oneOrder
                            ? "one order: no rhythm yet"
                            : stats?.purchaseDays === 1
                              ? "bought on one day: no rhythm of its own"
                              : profile.overdueRatio == null
                                ? "on rhythm"
                                : `overdue ratio ${ratio(profile.overdueRatio)}`}
                        </span>
                      )
                    ) : (
                      "–"
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </TableWrap>
    </div>
  );
}

function Timeline({ orders, total }: { orders: Order[]; total: number }) {
  return (
    <div>
      <h2>Orders across channels</h2>
      {orders.length < total && (
        <p class="muted">
          The {orders.length} most recent of {total} orders.
        </p>
      )}
      {orders.length === 0 ? (
        <p class="muted">No orders.</p>
      ) : (
        <ol class="timeline" aria-label="Order timeline, most recent first">
          {orders.map((order) => (
            <li key={order.id} class={`order channel-${order.channel}`}>
              <span class={`badge channel ${order.channel}`}>{channelNames[order.channel] ?? order.channel}</span>
              <span class="when">{dateTime(order.placedAt)}</span>
              <span class="what">
                {order.lines.map((line) => `${line.quantity}× ${line.productTitle ?? line.productId}`).join(", ")}
                {order.storeId ? <span class="muted small"> · {order.storeId}</span> : null}
              </span>
              <span class="total">
                {money(order.total)} {order.currency}
                {order.discountTotal > 0 && <span class="muted small"> ({money(order.discountTotal)} off)</span>}
              </span>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

function DataRights({ customerId }: { customerId: string }) {
  const { route } = useLocation();
  const [confirming, setConfirming] = useState(false);
  // The button pressed goes away (Erase customer) or comes back (Cancel): focus follows, never left on <body>.
  const { inside: cancelButton, opener: eraseButton } = useFocusFollows<HTMLButtonElement, HTMLButtonElement>(
    confirming,
  );
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  async function exportData() {
    setProblem(null);
    try {
      const data = await api<unknown>("GET", `/v1/customers/${encodeURIComponent(customerId)}/export`);
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
      const link = document.createElement("a");
      link.href = url;
      link.download = `patron-customer-${customerId}.json`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setStatus("Export downloaded.");
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error)));
    }
  }
  async function erase() {
    setProblem(null);
    try {
      await api("DELETE", `/v1/customers/${encodeURIComponent(customerId)}`);
      // The Customers page announces it, and its heading takes the focus (PageHeader).
      erased.value = customerId;
      route("/console/customers");
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error)));
    }
  }
  return (
    <div class="card rights">
      <h2>Data rights</h2>
      <p class="muted">Export everything Patron holds about this customer, or erase it for good.</p>
      <div class="actions">
        <button type="button" onClick={exportData}>
          Export data
        </button>
        {!confirming && (
          <button ref={eraseButton} type="button" class="danger" onClick={() => setConfirming(true)}>
            Erase customer
          </button>
        )}
      </div>
      {confirming && (
        <Confirm
          id="erase-title"
          question={`Erase customer ${customerId}? Their orders, identifiers and scores are deleted and cannot be brought back; orders sent again later stay suppressed.`}
          yes="Yes, erase this customer"
          onYes={erase}
          onCancel={() => setConfirming(false)}
          cancel={cancelButton}
        />
      )}
      {status && (
        <p role="status" class="muted">
          {status}
        </p>
      )}
      {problem && <ProblemNote problem={problem} />}
    </div>
  );
}
