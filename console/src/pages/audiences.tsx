// Saved audiences on the Customers page (POST/GET/DELETE /v1/admin/audiences): "Save as audience" keeps
// the list's current filters under a name, with an optional webhook the nightly job tells who joined
// and who left (its signing secret is shown once, right after saving); the Audiences section lists
// them with their size and last delivery, and deletes one after a confirmation.
import { signal } from "@preact/signals";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiProblem, api, count, dateTime, inFormWords, words } from "../api.ts";
import { Confirm, Loading, ProblemNote, TableWrap, useData, useFocusFollows } from "../ui.tsx";

interface Delivery {
  at: string;
  runId: string;
  outcome: "delivered" | "failed" | "no_changes";
  statusCode: number | null;
  error: string | null;
  joined: number;
  left: number;
}

interface Audience {
  id: string;
  name: string;
  filters: Record<string, string>;
  /** Whether the catalog has the lapsing category now; null without one. */
  lapsedCategoryInCatalog: boolean | null;
  webhookUrl: string | null;
  size: number | null;
  sizedAt: string | null;
  lastDelivery: Delivery | null;
}

/** Counts audiences saved from this page, so the list below reads again after each. */
const saves = signal(0);

const filterLabels: Record<string, string> = {
  stage: "stage",
  valueTier: "tier",
  discountSensitivity: "discounts",
  lapsedCategory: "lapsing in",
};

function describeFilters(filters: Record<string, string>): string {
  const parts = Object.entries(filters).map(([name, value]) => `${filterLabels[name] ?? name} ${words(value)}`);
  return parts.length ? parts.join(" · ") : "every scored customer";
}

const asProblem = (error: unknown) =>
  error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error));

/** "Save as audience" for the customer list's current filters. */
export function SaveAudience({ filters }: { filters: Record<string, string> }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [webhookUrl, setWebhookUrl] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const [saved, setSaved] = useState<{ name: string; secret: string; webhook: boolean; size: number | null } | null>(
    null,
  );
  // Focus follows the form: into its first field when it opens, back to "Save as audience" when it closes.
  const { inside: nameInput, opener: openButton } = useFocusFollows<HTMLInputElement, HTMLButtonElement>(open);
  // A refused save moves focus to the first field the API named, as the rule form does: its message is
  // read with it (aria-describedby), where focus left on the button would say nothing.
  const form = useRef<HTMLFormElement>(null);
  const [refusals, setRefusals] = useState(0);
  useEffect(() => {
    if (refusals > 0) form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [refusals]);
  const chosen = Object.fromEntries(
    Object.entries(filters)
      .map(([key, value]) => [key, value.trim()])
      .filter(([, value]) => value),
  );
  const fieldIssues = (field: string) =>
    problem?.issues
      .filter((issue) => String(issue.path[0]) === field)
      .map((issue) => inFormWords(issue.message, { name: "Audience name", webhookUrl: "Webhook URL" })) ?? [];
  async function save(event: Event) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setProblem(null);
    try {
      const url = webhookUrl.trim();
      const created = await api<Audience & { secret: string }>("POST", "/v1/admin/audiences", {
        name,
        filters: chosen,
        ...(url ? { webhookUrl: url } : {}),
      });
      setSaved({
        name: created.name,
        secret: created.secret,
        webhook: Boolean(created.webhookUrl),
        size: created.size,
      });
      setOpen(false);
      setName("");
      setWebhookUrl("");
      saves.value += 1;
    } catch (error) {
      setProblem(asProblem(error));
      setRefusals((n) => n + 1);
    } finally {
      setBusy(false);
    }
  }
  const nameIssues = fieldIssues("name");
  const urlIssues = fieldIssues("webhookUrl");
  const otherIssues = problem?.issues.filter((issue) => !["name", "webhookUrl"].includes(String(issue.path[0])));
  return (
    <div>
      {!open && (
        <div class="actions">
          <button
            ref={openButton}
            type="button"
            onClick={() => {
              setOpen(true);
              setSaved(null);
            }}
          >
            Save as audience
          </button>
        </div>
      )}
      {open && (
        <form
          ref={form}
          class="card"
          aria-labelledby="save-audience-title"
          onSubmit={save}
          // Escape closes the form as Cancel does, and as it cancels a confirmation.
          onKeyDown={(event) => {
            if (event.key === "Escape") setOpen(false);
          }}
        >
          <h3 id="save-audience-title">Save as audience</h3>
          <p class="muted">
            Saves {describeFilters(chosen)}. With a webhook, each nightly run POSTs who joined and who left since the
            last delivery.
          </p>
          <div class="field">
            <label for="audience-name">Audience name</label>
            <input
              ref={nameInput}
              id="audience-name"
              required
              maxLength={100}
              value={name}
              aria-invalid={nameIssues.length > 0}
              aria-describedby={nameIssues.length ? "audience-name-issues" : undefined}
              onInput={(event) => setName((event.target as HTMLInputElement).value)}
            />
            {nameIssues.length > 0 && (
              <p id="audience-name-issues" class="problem small">
                {nameIssues.join(" ")}
              </p>
            )}
          </div>
          <div class="field">
            <label for="audience-webhook">Webhook URL (optional)</label>
            <input
              id="audience-webhook"
              type="url"
              placeholder="https://hooks.example.com/patron"
              value={webhookUrl}
              aria-invalid={urlIssues.length > 0}
              aria-describedby={urlIssues.length ? "audience-webhook-issues" : undefined}
              onInput={(event) => setWebhookUrl((event.target as HTMLInputElement).value)}
            />
            {urlIssues.length > 0 && (
              <p id="audience-webhook-issues" class="problem small">
                {urlIssues.join(" ")}
              </p>
            )}
          </div>
          <div class="actions">
            <button type="submit" class="primary" aria-disabled={busy}>
              {busy ? "Saving…" : "Save audience"}
            </button>
            <button type="button" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
          {problem && (otherIssues?.length || problem.issues.length === 0) ? <ProblemNote problem={problem} /> : null}
          {problem && problem.issues.length > 0 && !otherIssues?.length && (
            <p class="problem" role="alert">
              Not saved: fix what is marked under the fields above.
            </p>
          )}
        </form>
      )}
      {saved && (
        <div class="card" role="status">
          <p>
            Audience “{saved.name}” saved
            {saved.size === null ? "." : `: ${count(saved.size, "customer")} in it now.`}
          </p>
          {saved.webhook && (
            <p>
              Its signing secret, shown only now: <code>{saved.secret}</code>. Give it to the receiver to verify each
              delivery's <code>webhook-signature</code>.
            </p>
          )}
        </div>
      )}
    </div>
  );
}

function DeliveryStatus({ delivery }: { delivery: Delivery | null }) {
  if (!delivery) return <span class="muted">not yet</span>;
  const status = delivery.statusCode ? ` (HTTP ${delivery.statusCode})` : "";
  const changes = `${delivery.joined} joined, ${delivery.left} left`;
  return (
    <span>
      {dateTime(delivery.at)}: {delivery.outcome === "no_changes" ? "no changes" : `${delivery.outcome}${status}`}
      {delivery.outcome !== "no_changes" && <span class="small muted"> · {changes}</span>}
      {delivery.error && <span class="small"> · {delivery.error}</span>}
    </span>
  );
}

/** The saved audiences: size, webhook and last delivery, and delete. */
export function Audiences() {
  const list = useData<{ audiences: Audience[] }>("/v1/admin/audiences");
  const [confirming, setConfirming] = useState<Audience | null>(null);
  // Focus goes to the confirmation's Cancel, and back to the row's Delete when it is cancelled.
  const { inside: cancelButton, opener: deleteButton } = useFocusFollows<HTMLButtonElement, HTMLButtonElement>(
    confirming !== null,
  );
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  // The audience just deleted, said in the status line under the heading until the next save or delete.
  const [deleted, setDeleted] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const savedHere = saves.value;
  const { reload } = list;
  useEffect(() => {
    if (savedHere > 0) {
      setDeleted(null);
      reload();
    }
  }, [savedHere, reload]);
  async function remove(audience: Audience) {
    setProblem(null);
    setDeleted(null);
    try {
      await api("DELETE", `/v1/admin/audiences/${encodeURIComponent(audience.id)}`);
      // Its row, and the Delete that opened the confirmation, are going: the focus goes to the section's
      // heading rather than back to that button (and from there to the page's body).
      deleteButton.current = null;
      heading.current?.focus();
      setDeleted(audience.name);
      setConfirming(null);
      reload();
    } catch (error) {
      setProblem(asProblem(error));
    }
  }
  const audiences = list.data?.audiences ?? [];
  return (
    <section aria-labelledby="audiences-title">
      <h2 id="audiences-title" ref={heading} tabIndex={-1}>
        Audiences
      </h2>
      <p class="muted">
        Saved lists, sized when saved and by each nightly run. An audience with a webhook is sent who joined and who
        left after every run.
      </p>
      {/* Always there, empty until needed: a live region that appears with its text is announced unreliably. */}
      <p role="status">{deleted && `Audience “${deleted}” was deleted.`}</p>
      {list.loading && !list.data ? (
        <Loading what="audiences" />
      ) : list.problem ? (
        <ProblemNote problem={list.problem} />
      ) : audiences.length === 0 ? (
        <div class="empty">
          <p>No saved audience yet: filter the customer list above and choose “Save as audience”.</p>
        </div>
      ) : (
        <TableWrap label="Saved audiences">
          <table>
            <caption class="visually-hidden">Saved audiences</caption>
            <thead>
              <tr>
                <th scope="col">Audience</th>
                <th scope="col">Filters</th>
                <th scope="col">Size</th>
                <th scope="col">Webhook</th>
                <th scope="col">Last delivery</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {audiences.map((audience) => (
                <tr key={audience.id}>
                  <td>{audience.name}</td>
                  <td>
                    {describeFilters(audience.filters)}
                    {audience.lapsedCategoryInCatalog === false && (
                      <>
                        {" "}
                        <span
                          class="badge warn"
                          title={`The catalog has no category ${audience.filters.lapsedCategory} now: the audience lists nobody`}
                        >
                          category not in the catalog
                        </span>
                      </>
                    )}
                  </td>
                  <td>
                    {audience.size == null ? (
                      <span class="muted">after the next nightly run</span>
                    ) : (
                      audience.size.toLocaleString("en-US")
                    )}
                  </td>
                  <td>{audience.webhookUrl ? new URL(audience.webhookUrl).host : <span class="muted">none</span>}</td>
                  <td>{audience.webhookUrl ? <DeliveryStatus delivery={audience.lastDelivery} /> : "–"}</td>
                  <td>
                    <button
                      type="button"
                      class="danger"
                      onClick={(event) => {
                        deleteButton.current = event.currentTarget;
                        setConfirming(audience);
                      }}
                    >
                      Delete <span class="visually-hidden">{audience.name}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {confirming && (
        <Confirm
          id="delete-audience-title"
          question={`Delete the audience “${confirming.name}”?${confirming.webhookUrl ? " Its webhook gets no more deliveries." : ""}`}
          yes="Yes, delete this audience"
          onYes={() => remove(confirming)}
          onCancel={() => setConfirming(null)}
          cancel={cancelButton}
        />
      )}
      {problem && <ProblemNote problem={problem} />}
    </section>
  );
}
