// Rules: the list (GET /v1/admin/rules) with each rule's state (live, scheduled, ended, disabled, as the
// API computes it) and enable/disable, and one form for a new rule (/console/rules/new, POST) or an
// existing one (/console/rules/:id, PATCH) with its change history, and deletion after a confirmation
// (DELETE; its history is kept by the API).
// Field validation comes from the API: each `issues[].path[0]` is shown under its field. Before saving,
// the draft can be previewed for one customer (POST /v1/admin/rules/preview: shelves before and after,
// side by side) and simulated over a sample of shoppers (POST /v1/admin/rules/simulate).
import { signal } from "@preact/signals";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { doubledRule } from "../../../worker/core/rules/same-effect.ts";
import { ApiProblem, api, count, dateTime, inFormWords, percent, timeZone, typedNumber } from "../api.ts";
import { CatalogSuggestions, useCatalogTargets } from "../catalog-targets.tsx";
import { previewVerdict, type RuleVersionFields, scheduleWords, whatChanged } from "../rule-words.ts";
import { fromZoneInput, toZoneInput } from "../time-zone.ts";
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

/** The rule just deleted, announced on the rules list it returns to until that page is left. */
const deleted = signal<{ id: string; name: string } | null>(null);

interface Segment {
  stage?: string | string[];
  valueTier?: string | string[];
  channelPreference?: string | string[];
  discountSensitivity?: string | string[];
}
interface Rule extends RuleVersionFields {
  id: string;
  segment: Segment | null;
  version: number;
  updatedAt: string;
  /** Whether the catalog the shelf ranks has the target now (an active product, or a category with one). */
  targetInCatalog: boolean;
  /** The catalog's name for it now (a product's title); null when the catalog lacks it. Not in a snapshot. */
  targetName?: string | null;
  /** From enabled, the schedule and now (worker/core/rules/state.ts). */
  state: RuleState;
}
type RuleState = "live" | "scheduled" | "ended" | "disabled";
interface Version {
  version: number;
  change: string;
  changedBy: string;
  changedAt: string;
  snapshot: Rule;
}

const actions = ["boost", "bury", "pin", "exclude", "allow_discounts", "hide_discounts"];
const segmentFields: { field: keyof Segment; label: string; values: string[] }[] = [
  { field: "stage", label: "Stage", values: ["new", "active", "fading", "lapsed"] },
  { field: "valueTier", label: "Value tier", values: ["top", "high", "medium", "low"] },
  { field: "channelPreference", label: "Channel", values: ["web", "store", "app"] },
  { field: "discountSensitivity", label: "Discount sensitivity", values: ["full_price", "mixed", "deal_seeker"] },
];

/** A rule's target as the notes name it: `category “heelz”`. */
const targetOf = (rule: { targetType: string; targetId: string }) => `${rule.targetType} “${rule.targetId.trim()}”`;

/** Said wherever a rule's target is missing from the catalog: the rule is kept but changes no shelf. */
function NotInCatalog({ target, id }: { target: string; id?: string }) {
  return (
    <p class="problem" role="note" id={id}>
      The catalog has no {target} now: this rule changes no shelf until it does. Check the id for a typo, or whether the
      item was taken out of the catalog.
    </p>
  );
}

/** What a boost or bury does to the score, which strength alone does not say: "score × 2" for a boost of 1. */
function weight(rule: { action: string; strength: number | null }): string {
  const factor = (1 + (rule.strength ?? 0)).toLocaleString("en-US", { maximumFractionDigits: 3 });
  return rule.action === "boost" ? `score × ${factor}` : `score ÷ ${factor}`;
}

function strengthHint(action: string): string {
  const [how, sign] = action === "boost" ? ["multiplied", "×"] : ["divided", "÷"];
  return `Greater than 0. The score is ${how} by 1 + strength: 0.5 (a gentle nudge) is ${sign} 1.5, 1 is ${sign} 2.`;
}

function describe(rule: Rule): string {
  // Named as the catalog names it when that says more than the id ("product Linen Candle (candles-001)");
  // a version's snapshot has no name (the catalog changes, the snapshot does not).
  const name = rule.targetName;
  const shown =
    name && name.toLowerCase() !== rule.targetId.toLowerCase() ? `${name} (${rule.targetId})` : rule.targetId;
  const target = rule.targetId === "*" ? "every item" : `${rule.targetType} ${shown}`;
  const how =
    rule.action === "boost" || rule.action === "bury"
      ? `${rule.action} ${target}: ${weight(rule)}`
      : rule.action === "pin"
        ? `pin ${target} to slot ${rule.slot}`
        : `${rule.action.replace(/_/g, " ")} ${target}`;
  // In the form's words: "discount sensitivity full price", not the API's field and value names.
  const segment = Object.entries(rule.segment ?? {})
    .map(([field, value]) => {
      const label = segmentFields.find((group) => group.field === field)?.label.toLowerCase() ?? field;
      const values = (Array.isArray(value) ? value : [value]).map((one) => one.replace(/_/g, " "));
      return `${label} ${values.join("/")}`;
    })
    .join(", ");
  return segment ? `${how}, for ${segment}` : `${how}, for everyone`;
}

/** A rule's state as a badge, with the date that goes with it: "scheduled, starts 20 Dec 2026, 00:00". */
function StateBadge({ rule }: { rule: Pick<Rule, "state" | "startsAt" | "endsAt"> }) {
  const style = { live: "ok", scheduled: "warn", ended: "warn", disabled: "off" }[rule.state];
  const when =
    rule.state === "scheduled" && rule.startsAt
      ? `starts ${dateTime(rule.startsAt)}`
      : rule.state === "ended" && rule.endsAt
        ? `on ${dateTime(rule.endsAt)}`
        : null;
  return (
    <>
      <span class={`badge ${style}`}>{rule.state}</span>
      {when && <span class="small muted"> {when}</span>}
    </>
  );
}

/**
 * Said of a rule that is not live (`shown`: the preview or simulation that applied the draft, if any):
 * when a scheduled one starts, and that the shelves apply it as if it had; when an ended one ended, and
 * that it changes no shelf.
 */
function ScheduleNote({
  state,
  startsAt,
  endsAt,
  shown,
  id,
}: Pick<Rule, "state" | "startsAt" | "endsAt"> & { shown?: "preview" | "simulation"; id?: string }) {
  if (state === "scheduled")
    return (
      <p role="note" id={id}>
        Scheduled: starts {dateTime(startsAt)}.
        {shown && ` The ${shown} applies it as if it had started, to the shelves as they are now.`}
      </p>
    );
  if (state === "ended")
    return (
      <p class="problem" role="note" id={id}>
        Ended {dateTime(endsAt)}: this rule changes no shelf. Set a later end, or clear it, to use it again.
      </p>
    );
  return null;
}

export function RulesPage() {
  const rules = useData<Rule[]>("/v1/admin/rules");
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  // What Enable or Disable just did, said in the status line: the button pressed only changes its label.
  const [toggled, setToggled] = useState<string | null>(null);
  // The deletion's notice is said once: leaving the page clears it.
  useEffect(
    () => () => {
      deleted.value = null;
    },
    [],
  );
  async function toggle(rule: Rule) {
    setProblem(null);
    setToggled(null);
    try {
      await api("POST", `/v1/admin/rules/${encodeURIComponent(rule.id)}/${rule.enabled ? "disable" : "enable"}`);
      setToggled(`Rule “${rule.name}” ${rule.enabled ? "disabled" : "enabled"}.`);
      rules.reload();
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error)));
    }
  }
  return (
    <section>
      <PageHeader title="Rules">
        <p class="muted">Steer the “Picked for you” shelf. A change reaches recommendations within 5 seconds.</p>
        <a class="button primary" href="/console/rules/new">
          New rule
        </a>
      </PageHeader>
      {/* Always there, empty until needed: a live region that appears with its text is announced unreliably. */}
      <p role="status">{toggled}</p>
      {deleted.value && (
        <p role="status" class="card">
          Rule “{deleted.value.name}” was deleted.{" "}
          <a href={`/console/rules/${encodeURIComponent(deleted.value.id)}`}>Its history is kept</a>.
        </p>
      )}
      {problem && <ProblemNote problem={problem} />}
      {rules.loading && !rules.data ? (
        <Loading what="rules" />
      ) : rules.problem ? (
        <ProblemNote problem={rules.problem} />
      ) : (rules.data ?? []).length === 0 ? (
        <div class="empty">
          <p>No rules yet: the shelf follows each shopper's own model. Create a rule to boost, bury, pin or exclude.</p>
        </div>
      ) : (
        <TableWrap label="Rules">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">What it does</th>
                <th scope="col">When</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {(rules.data ?? []).map((rule) => (
                <tr key={rule.id}>
                  <td>
                    <a href={`/console/rules/${encodeURIComponent(rule.id)}`}>{rule.name}</a>
                  </td>
                  <td>
                    {describe(rule)}
                    {!rule.targetInCatalog && (
                      <>
                        {" "}
                        <span class="badge warn" title={`The catalog has no ${targetOf(rule)} now`}>
                          not in the catalog
                        </span>
                      </>
                    )}
                  </td>
                  <td class="small">
                    {rule.startsAt && rule.endsAt
                      ? `${dateTime(rule.startsAt)} – ${dateTime(rule.endsAt)}`
                      : rule.startsAt
                        ? `from ${dateTime(rule.startsAt)}`
                        : rule.endsAt
                          ? `until ${dateTime(rule.endsAt)}`
                          : "always"}
                  </td>
                  <td>
                    <StateBadge rule={rule} />
                  </td>
                  <td>
                    <button
                      type="button"
                      onClick={() => toggle(rule)}
                      aria-label={`${rule.enabled ? "Disable" : "Enable"} ${rule.name}`}
                    >
                      {rule.enabled ? "Disable" : "Enable"}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}

interface Draft {
  name: string;
  action: string;
  targetType: string;
  targetId: string;
  strength: string;
  slot: string;
  startsAt: string;
  endsAt: string;
  enabled: boolean;
  segment: Record<string, string[]>;
}

const emptyDraft: Draft = {
  name: "",
  action: "boost",
  targetType: "category",
  targetId: "",
  strength: "0.5",
  slot: "",
  startsAt: "",
  endsAt: "",
  enabled: true,
  segment: {},
};

/** `datetime-local` value for an ISO instant, and back, on the retailer's clock (as every time shown). */
const toLocalInput = (iso: string | null) => toZoneInput(iso, timeZone.value);
const fromLocalInput = (value: string) => fromZoneInput(value, timeZone.value);

function draftOf(rule: Rule): Draft {
  const segment: Record<string, string[]> = {};
  for (const [field, value] of Object.entries(rule.segment ?? {}))
    segment[field] = Array.isArray(value) ? value : [value as string];
  return {
    name: rule.name,
    action: rule.action,
    targetType: rule.targetType,
    targetId: rule.targetId,
    strength: rule.strength == null ? "" : String(rule.strength),
    slot: rule.slot == null ? "" : String(rule.slot),
    startsAt: toLocalInput(rule.startsAt),
    endsAt: toLocalInput(rule.endsAt),
    enabled: rule.enabled,
    segment,
  };
}

function bodyOf(draft: Draft) {
  const usesStrength = draft.action === "boost" || draft.action === "bury";
  const segment = Object.fromEntries(Object.entries(draft.segment).filter(([, values]) => values.length > 0));
  return {
    name: draft.name,
    action: draft.action,
    targetType: draft.targetType,
    targetId: draft.targetId,
    strength: usesStrength ? typedNumber(draft.strength) : null,
    slot: draft.action === "pin" ? typedNumber(draft.slot) : null,
    segment: Object.keys(segment).length > 0 ? segment : null,
    startsAt: fromLocalInput(draft.startsAt),
    endsAt: fromLocalInput(draft.endsAt),
    enabled: draft.enabled,
  };
}

/** The problem without the issues of `fields`; null once a problem made only of field issues has none left. */
function withoutFieldIssues(problem: ApiProblem | null, fields: string[]): ApiProblem | null {
  if (!problem || problem.issues.length === 0) return problem;
  const issues = problem.issues.filter((issue) => !fields.includes(String(issue.path[0])));
  if (issues.length === problem.issues.length) return problem;
  return issues.length === 0
    ? null
    : new ApiProblem(problem.status, problem.code, problem.message, issues, problem.requestId);
}

export function RuleEditPage() {
  const { params } = useRoute();
  const isNew = params.id === "new";
  const existing = useData<Rule & { versions: Version[] }>(
    isNew ? null : `/v1/admin/rules/${encodeURIComponent(params.id ?? "")}`,
  );
  // The rule this address names: while another rule's page loads, the last one's answer is kept, and
  // its heading and form are not to be shown under this rule's address (or edited as if they were it).
  const rule = existing.data?.id === params.id ? existing.data : undefined;
  if (!isNew && existing.loading && !rule) return <Loading what="the rule" />;
  // A deleted rule answers 404, and its history stays readable: shown, if there is one.
  if (!isNew && existing.problem?.status === 404)
    return <DeletedRule id={params.id ?? ""} problem={existing.problem} />;
  if (!isNew && existing.problem) return <NoRule title="Rule not loaded" problem={existing.problem} />;
  if (!isNew && !rule) return <Loading what="the rule" />;
  return (
    <section>
      <p>
        <a href="/console/rules">← All rules</a>
      </p>
      <PageHeader title={isNew ? "New rule" : `Rule: ${rule?.name ?? ""}`} />
      {!isNew && rule && (
        <p>
          State: <StateBadge rule={rule} />
        </p>
      )}
      <RuleForm
        // Keyed by the rule alone: a save reloads it as a new version, and the form (its "Saved." and the
        // focused button) stays.
        // Not the rule last loaded when this is the new-rule form again (Back from a rule just created):
        // that form would hold the rule, to be created twice.
        key={!isNew && rule ? rule.id : "new"}
        rule={isNew ? null : (rule ?? null)}
        onSaved={existing.reload}
      />
      {!isNew && rule && <History versions={rule.versions} />}
      {!isNew && rule && <DeleteRule rule={rule} />}
    </section>
  );
}

/** A rule that is no longer there: its history, when it was deleted (GET /v1/admin/rules/:id/versions), else the 404. */
function DeletedRule({ id, problem }: { id: string; problem: ApiProblem }) {
  const versions = useData<Version[]>(`/v1/admin/rules/${encodeURIComponent(id)}/versions`);
  if (versions.loading && !versions.data) return <Loading what="the rule's history" />;
  // The history could not be read (not that there is none): say that, not "no such rule".
  if (versions.problem && versions.problem.status !== 404)
    return <NoRule title="Rule not loaded" problem={versions.problem} />;
  const last = versions.data?.at(-1);
  if (last?.change !== "delete") return <NoRule title="Rule not found" problem={problem} />;
  return (
    <section>
      <p>
        <a href="/console/rules">← All rules</a>
      </p>
      <PageHeader title={`Rule: ${last.snapshot.name} (deleted)`} />
      <p>
        Deleted {dateTime(last.changedAt)} by {last.changedBy}: it changes no shelf. Its history is kept.
      </p>
      <History versions={versions.data ?? []} />
    </section>
  );
}

/**
 * A rule page with no rule to show (no rule has that id, or it could not be read): a page all the same,
 * headed, so the tab is named and the focus goes to its heading, with the API's message under it.
 */
function NoRule({ title, problem }: { title: string; problem: ApiProblem }) {
  return (
    <section>
      <p>
        <a href="/console/rules">← All rules</a>
      </p>
      <PageHeader title={title} />
      <ProblemNote problem={problem} />
    </section>
  );
}

/** Deleting the rule, after a confirmation; the rules list then says it was deleted. */
function DeleteRule({ rule }: { rule: Rule }) {
  const { route } = useLocation();
  const [confirming, setConfirming] = useState(false);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const { inside: cancelButton, opener: deleteButton } = useFocusFollows<HTMLButtonElement, HTMLButtonElement>(
    confirming,
  );
  async function remove() {
    setProblem(null);
    try {
      await api("DELETE", `/v1/admin/rules/${encodeURIComponent(rule.id)}`);
      // The rules list announces it, and its heading takes the focus (PageHeader).
      deleted.value = { id: rule.id, name: rule.name };
      route("/console/rules");
    } catch (error) {
      setConfirming(false);
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error)));
    }
  }
  return (
    <div class="card">
      <h2>Delete this rule</h2>
      <p class="muted">
        Shelves stop following it within 5 seconds; its history stays. To stop it for a while, untick Enabled instead.
      </p>
      {confirming ? (
        <Confirm
          id="delete-rule-title"
          question={`Delete the rule “${rule.name}”? It cannot be brought back; its history is kept.`}
          yes="Yes, delete this rule"
          onYes={remove}
          onCancel={() => setConfirming(false)}
          cancel={cancelButton}
        />
      ) : (
        <div class="actions">
          <button ref={deleteButton} type="button" class="danger" onClick={() => setConfirming(true)}>
            Delete rule
          </button>
        </div>
      )}
      {problem && <ProblemNote problem={problem} />}
    </div>
  );
}

/** The form's labels of the API's field names, for the messages shown under the fields. */
const fieldLabels = {
  name: "Name",
  action: "Action",
  targetType: "Target type",
  targetId: "Target id",
  strength: "Strength",
  slot: "Slot",
  startsAt: "Starts",
  endsAt: "Ends",
  enabled: "Enabled",
};

/**
 * A preview's or simulation's refusal of the draft itself (every issue under `rule`), in the form's
 * words ("Target id must not be empty"); null for any other refusal, shown as the API words it.
 */
function draftIssues(problem: ApiProblem): string[] | null {
  const issues = problem.issues;
  if (issues.length === 0 || !issues.every((issue) => issue.path[0] === "rule")) return null;
  return issues.map((issue) => inFormWords(issue.message, fieldLabels));
}

/** A draft kept in the page's history entry, for the form it was typed in (`key`). */
interface KeptDraft {
  key: string;
  draft: Draft;
}

/** The draft this history entry keeps for the form `key` names: Back, Forward or a reload find it. */
function keptDraft(key: string): Draft | null {
  const kept = keptInEntry<KeptDraft>("ruleDraft");
  return kept?.key === key ? kept.draft : null;
}

function RuleForm({ rule, onSaved }: { rule: Rule | null; onSaved: () => void }) {
  const { route } = useLocation();
  // The version the draft was filled from, then the one this form saved: a later save sends it, so
  // someone else's save in between is a 409 (and this form's own, however soon after, is not).
  const [basedOn, setBasedOn] = useState(rule?.version ?? 0);
  // What is typed is kept in the history entry (for a new rule, or for this version of a saved one), so
  // leaving the page and coming Back, or a reload, does not lose a rule half written.
  const draftKey = rule ? `${rule.id}@${basedOn}` : "new";
  const [draft, setDraft] = useState<Draft>(() => keptDraft(draftKey) ?? (rule ? draftOf(rule) : emptyDraft));
  useLayoutEffect(() => keepInEntry("ruleDraft", { key: draftKey, draft }), [draftKey, draft]);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // A refused save moves focus to the first field the API named, for a keyboard or screen reader user.
  const form = useRef<HTMLFormElement>(null);
  const [refusals, setRefusals] = useState(0);
  useEffect(() => {
    if (refusals > 0) form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [refusals]);
  useEffect(() => setSaved(null), [draft]);
  const set = (patch: Partial<Draft>) => {
    setDraft((current) => ({ ...current, ...patch }));
    // A field's message is about the value that was sent: editing the field clears it.
    setProblem((current) => withoutFieldIssues(current, Object.keys(patch)));
  };
  // The other rules that apply now or will (live or scheduled), for the notes on the rules that share
  // this draft's slot or its target.
  const others = useData<Rule[]>("/v1/admin/rules");
  const othersLiveOrScheduled = (others.data ?? []).filter(
    (other) => other.id !== rule?.id && (other.state === "live" || other.state === "scheduled"),
  );
  // The live or scheduled rule that already does exactly what this draft would, by the API's own test:
  // saving it is refused (409), so it is said before, with the way to that rule. A number typed wrong is
  // refused for itself first.
  // As the API, an edit that keeps the effect the saved rule has while it applies is no double (a rule
  // doubled before doubles were refused can still be renamed).
  const body = bodyOf(draft);
  const effect =
    typeof body.strength !== "string" && typeof body.slot !== "string"
      ? { ...body, strength: body.strength, slot: body.slot, id: rule?.id }
      : undefined;
  const twin = effect && doubledRule(effect, others.data ?? [], new Date(), rule ?? undefined);
  // The notes below leave that rule out: its own note says more.
  const othersBesideTwin = othersLiveOrScheduled.filter((other) => other.id !== twin?.id);
  // Other pins of the same kind (categories or products) that can hold the slot this draft pins: both
  // hold on a shelf they both reach, one at the slot and the other right after it.
  const draftSlot = Number(draft.slot);
  const samePinSlot =
    draft.action === "pin" && Number.isInteger(draftSlot)
      ? othersBesideTwin.filter(
          (other) => other.action === "pin" && other.slot === draftSlot && other.targetType === draft.targetType,
        )
      : [];
  // Other rules naming the same target: where they reach one shelf they all apply (two boosts multiply, a
  // pin shows what an exclude removes), which a second rule made by mistake hides.
  const draftTarget = draft.targetId.trim();
  const sameTarget =
    draftTarget && draftTarget !== "*"
      ? othersBesideTwin.filter((other) => other.targetType === draft.targetType && other.targetId === draftTarget)
      : [];
  // The saved rule's window is over, and the draft still ends then.
  const savedEnded = rule?.state === "ended" && draft.endsAt === toLocalInput(rule.endsAt);
  // The saved rule's target is not in the catalog, and the draft still names it.
  const savedTargetMissing =
    rule !== null &&
    !rule.targetInCatalog &&
    rule.targetType === draft.targetType &&
    rule.targetId === draft.targetId.trim();
  const catalogTargets = useCatalogTargets(draft.targetType, draft.targetId);
  const fieldProblem = (field: string) =>
    problem?.issues
      .filter((issue) => String(issue.path[0]) === field)
      .map((issue) => inFormWords(issue.message, fieldLabels));
  const otherProblems = problem?.issues.filter(
    (issue) =>
      !["name", "action", "targetType", "targetId", "strength", "slot", "segment", "startsAt", "endsAt"].includes(
        String(issue.path[0]),
      ),
  );
  async function submit(event: Event) {
    event.preventDefault();
    if (busy) return;
    // A date typed without its time (or the reverse) leaves the field's value empty, which would save the
    // rule with no start (live at once) or no end (never ending): refused here, in the form's words.
    const halfTyped = (["startsAt", "endsAt"] as const)
      .filter((field) => (document.getElementById(`rule-${field}`) as HTMLInputElement | null)?.validity.badInput)
      .map((field) => ({
        path: [field],
        message: `${field === "startsAt" ? "Starts" : "Ends"} needs both a date and a time (or neither)`,
      }));
    if (halfTyped.length > 0) {
      setProblem(new ApiProblem(400, "invalid_request", "The schedule is not complete.", halfTyped));
      setRefusals((n) => n + 1);
      return;
    }
    setBusy(true);
    setProblem(null);
    try {
      if (rule) {
        // From the version this form was filled from: a save by someone else since is a 409, not overwritten.
        const updated = await api<Rule>("PATCH", `/v1/admin/rules/${encodeURIComponent(rule.id)}`, {
          ...bodyOf(draft),
          version: basedOn,
        });
        setBasedOn(updated.version);
        setSaved("Saved.");
        onSaved();
      } else {
        const created = await api<Rule>("POST", "/v1/admin/rules", bodyOf(draft));
        // Created: Back to the new-rule form finds it empty, not a draft to create twice.
        keepInEntry("ruleDraft", undefined);
        route(`/console/rules/${encodeURIComponent(created.id)}`);
      }
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error)));
      setRefusals((n) => n + 1);
      // A 409 may be about a rule saved since the list was read (the same rule, made elsewhere): read it
      // again, so the note naming that rule, with its link, shows beside the API's message.
      if (error instanceof ApiProblem && error.status === 409) others.reload();
    } finally {
      setBusy(false);
    }
  }
  const text = (
    field: keyof Draft,
    label: string,
    options: { type?: "text" | "datetime-local"; inputMode?: "decimal" | "numeric"; hint?: string } = {},
  ) => {
    const messages = fieldProblem(field) ?? [];
    const id = `rule-${field}`;
    return (
      <div class="field">
        <label for={id}>{label}</label>
        <input
          id={id}
          type={(options.type ?? "text") as "text"}
          inputMode={options.inputMode}
          value={draft[field] as string}
          aria-invalid={messages.length > 0 ? "true" : undefined}
          aria-describedby={
            [
              messages.length > 0 ? `${id}-problem` : options.hint ? `${id}-hint` : null,
              field === "targetId" && savedTargetMissing ? "rule-targetId-catalog" : null,
              field === "targetId" && sameTarget.length > 0 ? "rule-targetId-others" : null,
              field === "endsAt" && savedEnded ? "rule-endsAt-ended" : null,
              field === "slot" && samePinSlot.length > 0 ? "rule-slot-shared" : null,
            ]
              .filter(Boolean)
              .join(" ") || undefined
          }
          onInput={(event) => set({ [field]: (event.target as HTMLInputElement).value } as Partial<Draft>)}
        />
        {options.hint && (
          <small id={`${id}-hint`} class="muted">
            {options.hint}
          </small>
        )}
        {messages.length > 0 && (
          <small id={`${id}-problem`} class="problem">
            {messages.join("; ")}
          </small>
        )}
      </div>
    );
  };
  const segmentMessages = fieldProblem("segment") ?? [];
  return (
    <form ref={form} class="card rule-form" onSubmit={submit} noValidate>
      {text("name", "Name")}
      <div class="field">
        <label for="rule-action">Action</label>
        <select
          id="rule-action"
          value={draft.action}
          onChange={(event) => set({ action: (event.target as HTMLSelectElement).value })}
        >
          {actions.map((action) => (
            <option key={action} value={action}>
              {action.replace(/_/g, " ")}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="rule-targetType">Target type</label>
        <select
          id="rule-targetType"
          value={draft.targetType}
          onChange={(event) => set({ targetType: (event.target as HTMLSelectElement).value })}
        >
          <option value="category">category</option>
          <option value="product">product</option>
        </select>
      </div>
      {text("targetId", "Target id", {
        hint: "A category or product id; * (every item) for the discount switches. The catalog's nearest (by id, name or title) show under it as you type.",
      })}
      <CatalogSuggestions
        targets={catalogTargets}
        typed={draft.targetId}
        fieldId="rule-targetId"
        pick={(id) => set({ targetId: id })}
      />
      {savedTargetMissing && <NotInCatalog target={targetOf(rule)} id="rule-targetId-catalog" />}
      {sameTarget.length > 0 && (
        <p id="rule-targetId-others" class="muted small" role="note">
          {draft.targetType === "product" ? "Product" : "Category"} {draftTarget} is also the target of{" "}
          {sameTarget.map((other) => `“${other.name}” (${describe(other)}; ${other.state})`).join(", ")}: where they
          reach the same shelf they all apply, so boosts and buries multiply and a pin shows what an exclude removes.
        </p>
      )}
      {(draft.action === "boost" || draft.action === "bury") &&
        text("strength", "Strength", { inputMode: "decimal", hint: strengthHint(draft.action) })}
      {draft.action === "pin" &&
        text("slot", "Slot", {
          inputMode: "numeric",
          hint: "Shelf position, 1 to 50. A shelf shows 8 items unless its page asks for more (data-limit): a pin past its last item is not seen there.",
        })}
      {samePinSlot.length > 0 && (
        <p id="rule-slot-shared" class="muted small" role="note">
          Slot {draftSlot} is pinned by {samePinSlot.map((other) => `“${other.name}” (${other.state})`).join(", ")} too:
          where both reach a shelf, one shows at slot {draftSlot} and the other right after it.
        </p>
      )}
      <fieldset class="segment">
        <legend>Who it applies to (nothing ticked: everyone)</legend>
        {/* Each group a fieldset of its own, so a checkbox is read with its group's name ("Value tier, top"). */}
        {segmentFields.map((group) => (
          <fieldset class="field segment-group" key={group.field}>
            <legend class="group-label">{group.label}</legend>
            <div class="checks">
              {group.values.map((value) => {
                const checked = draft.segment[group.field]?.includes(value) ?? false;
                return (
                  <label key={value} class="check">
                    <input
                      type="checkbox"
                      checked={checked}
                      onChange={() => {
                        const current = draft.segment[group.field] ?? [];
                        set({
                          segment: {
                            ...draft.segment,
                            [group.field]: checked ? current.filter((item) => item !== value) : [...current, value],
                          },
                        });
                      }}
                    />
                    {value.replace(/_/g, " ")}
                  </label>
                );
              })}
            </div>
          </fieldset>
        ))}
        {segmentMessages.length > 0 && <small class="problem">{segmentMessages.join("; ")}</small>}
      </fieldset>
      {text("startsAt", "Starts", {
        type: "datetime-local",
        hint: `Optional, in ${timeZone.value} time (the retailer's).`,
      })}
      {text("endsAt", "Ends", { type: "datetime-local", hint: "Optional." })}
      {savedEnded && rule && (
        <ScheduleNote state="ended" startsAt={rule.startsAt} endsAt={rule.endsAt} id="rule-endsAt-ended" />
      )}
      <label class="check">
        <input type="checkbox" checked={draft.enabled} onChange={() => set({ enabled: !draft.enabled })} />
        Enabled
      </label>
      {twin && (
        <p id="rule-same-effect" class="problem" role="note">
          “{twin.name}” ({twin.state}) already does exactly this: the same action on the same target, with the same
          strength or slot, segment and schedule. A rule is not saved twice:{" "}
          <a href={`/console/rules/${encodeURIComponent(twin.id)}`}>open “{twin.name}”</a> to change it, or make this
          one differ.
        </p>
      )}
      {problem && (otherProblems?.length || problem.issues.length === 0) ? <ProblemNote problem={problem} /> : null}
      {problem && problem.issues.length > 0 && !otherProblems?.length && (
        <p class="problem" role="alert">
          Not saved: fix what is marked under the fields above.
        </p>
      )}
      <div class="actions">
        {/* aria-disabled, not disabled: a disabled button would drop the keyboard's focus to the page. */}
        <button type="submit" class="primary" aria-disabled={busy}>
          {rule ? "Save changes" : "Create rule"}
        </button>
        <span role="status" class="muted">
          {saved}
        </span>
      </div>
      {/* A draft is tried before it has a name: the name matters only when it is saved. */}
      <TryOut body={{ ...bodyOf(draft), name: draft.name.trim() || "Draft" }} ruleId={rule?.id} />
    </form>
  );
}

interface ShelfItem {
  rank: number;
  id: string;
  title: string;
  categoryName: string;
  price: number;
  reason: string;
}
interface ShelfCategory {
  rank: number;
  id: string;
  name: string;
  reason: string;
}

/** What a preview or simulation was asked about, kept with its answer (the draft may change after). */
interface Asked {
  action: string;
  target: string;
  startsAt: string | null;
  endsAt: string | null;
}
/** The draft's state now, and whether the "after" shelves apply it as if it had started. */
interface DraftSchedule {
  ruleState: RuleState;
  asIfStarted: boolean;
}
interface Preview extends Asked, DraftSchedule {
  customerId: string | null;
  anonymous: boolean;
  storefrontAccount: boolean;
  changed: boolean;
  targetInCatalog: boolean;
  before: ShelfItem[];
  after: ShelfItem[];
  categories: { before: ShelfCategory[]; after: ShelfCategory[] };
}
interface Simulation extends Asked, DraftSchedule {
  shoppers: number;
  storefrontShoppers: number;
  storefrontAffected: number;
  storefrontAffectedShare: number;
  targetInCatalog: boolean;
  affected: number;
  affectedShare: number;
  targetShoppers: number;
  meanRankChange: number | null;
  enteredShare: number;
  leftShare: number;
  categoryExposure: { categoryId: string; categoryName: string; before: number; after: number; change: number }[];
  categoriesLosingExposure: string[];
}

const askedOf = (body: ReturnType<typeof bodyOf>): Asked => ({
  action: body.action,
  target: targetOf(body),
  startsAt: body.startsAt,
  endsAt: body.endsAt,
});

const asProblem = (error: unknown) =>
  error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error));

/**
 * Try the draft before saving: one customer's shelf before and after, and its effect over a sample.
 * Editing a saved rule, the draft takes that rule's place (`ruleId`) rather than adding to it.
 */
function TryOut({ body, ruleId }: { body: ReturnType<typeof bodyOf>; ruleId?: string }) {
  const [customerId, setCustomerId] = useState("");
  const [preview, setPreview] = useState<Preview | null>(null);
  const [simulation, setSimulation] = useState<Simulation | null>(null);
  // With the id it was asked for: the hint under a 404 judges that id, not what is typed since.
  const [problem, setProblem] = useState<{
    what: string;
    problem: ApiProblem;
    customerId: string;
    draftIssues: string[] | null;
  } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  // Said when Preview is pressed with no id (the button is never silently inert): how many times, so each
  // press puts the sentence in the live region anew and a screen reader says it again.
  const [askForId, setAskForId] = useState(0);
  async function run(what: "preview" | "anonymous" | "simulate") {
    if (busy !== null) return;
    if (what === "preview" && customerId.trim() === "") {
      setAskForId((asked) => asked + 1);
      document.getElementById("preview-customer")?.focus();
      return;
    }
    setAskForId(0);
    setBusy(what);
    setProblem(null);
    try {
      if (what !== "simulate") {
        setPreview(null);
        const answer = await api<Omit<Preview, keyof Asked>>("POST", "/v1/admin/rules/preview", {
          rule: body,
          ruleId,
          ...(what === "anonymous" ? { anonymous: true } : { customerId: customerId.trim() }),
        });
        setPreview({ ...answer, ...askedOf(body) });
      } else {
        setSimulation(null);
        const answer = await api<Omit<Simulation, keyof Asked>>("POST", "/v1/admin/rules/simulate", {
          rule: body,
          ruleId,
          sample: 200,
        });
        setSimulation({ ...answer, ...askedOf(body) });
      }
    } catch (error) {
      const problem = asProblem(error);
      setProblem({ what, problem, customerId: customerId.trim(), draftIssues: draftIssues(problem) });
    } finally {
      setBusy(null);
    }
  }
  return (
    <section class="try-out" aria-labelledby="try-out-title">
      <h2 id="try-out-title">Try it before saving</h2>
      <p class="muted">Nothing is stored: the shelves are computed with the published rules plus this draft.</p>
      <div class="field inline">
        <label for="preview-customer">Customer id</label>
        <input
          id="preview-customer"
          class="customer-id"
          value={customerId}
          placeholder="c_…"
          aria-describedby="preview-customer-ask preview-customer-hint"
          aria-invalid={askForId > 0}
          onInput={(event) => {
            setCustomerId((event.target as HTMLInputElement).value);
            setAskForId(0);
          }}
          onKeyDown={(event) => {
            // Enter previews instead of saving the rule.
            if (event.key !== "Enter") return;
            event.preventDefault();
            run("preview");
          }}
        />
        {/* aria-disabled, not disabled: the button pressed keeps the keyboard's focus while it works. */}
        <button type="button" onClick={() => run("preview")} aria-disabled={busy !== null}>
          {busy === "preview" ? "Previewing…" : "Preview"}
        </button>
        <button type="button" onClick={() => run("anonymous")} aria-disabled={busy !== null}>
          {busy === "anonymous" ? "Previewing…" : "Shelf for visitors not signed in"}
        </button>
        <button type="button" onClick={() => run("simulate")} aria-disabled={busy !== null}>
          {busy === "simulate" ? "Simulating…" : "Simulate over 200 shoppers"}
        </button>
      </div>
      {/* Always there, empty until needed: a live region that appears with its text is announced unreliably. */}
      <p id="preview-customer-ask" class="small" role="alert">
        {askForId > 0 && <span key={askForId}>Type a customer id to preview their shelf.</span>}
      </p>
      <p id="preview-customer-hint" class="muted small">
        A customer id starts with c_: Customers and each customer's page show it (look an email, phone, loyalty number
        or account up there).
      </p>
      {problem && (
        <div>
          <p class="muted small">{problem.what === "simulate" ? "Simulation" : "Preview"} failed:</p>
          {problem.draftIssues ? (
            <div class="problem" role="alert">
              <p>The rule above cannot be tried yet:</p>
              <ul>
                {problem.draftIssues.map((message) => (
                  <li key={message}>{message}</li>
                ))}
              </ul>
            </div>
          ) : (
            <ProblemNote problem={problem.problem} />
          )}
          {problem.problem.status === 404 && problem.what === "preview" && !problem.customerId.startsWith("c_") && (
            <p class="small">
              “{problem.customerId}” is not a customer id, which starts with c_: look the account or email up on{" "}
              <a href="/console/customers">Customers</a> to find theirs.
            </p>
          )}
        </div>
      )}
      {preview && <PreviewView preview={preview} />}
      {simulation && <SimulationView simulation={simulation} />}
    </section>
  );
}

function PreviewView({ preview }: { preview: Preview }) {
  const rankBefore = new Map(preview.before.map((item) => [item.id, item.rank]));
  const rankAfter = new Map(preview.after.map((item) => [item.id, item.rank]));
  const whose = preview.anonymous ? "the shelf of visitors who are not signed in" : "this customer's shelf";
  // Before: where the item goes; after: where it came from.
  const mark = (rank: number, other: number | undefined, gone: string, side: "before" | "after") =>
    other === undefined
      ? gone
      : other === rank
        ? ""
        : side === "after"
          ? `${other > rank ? "up" : "down"} from ${other}`
          : `moves ${other < rank ? "up" : "down"} to ${other}`;
  const shelf = (title: string, items: ShelfItem[], other: Map<string, number>, gone: string) => (
    <div class="card">
      <h4>{title}</h4>
      {items.length === 0 ? (
        <p class="muted">No items on this shelf.</p>
      ) : (
        <ol class="shelf">
          {items.map((item) => {
            const note = mark(item.rank, other.get(item.id), gone, title === "Before" ? "before" : "after");
            return (
              <li key={item.id} class={note ? "changed" : undefined}>
                <strong>{item.title}</strong> <span class="muted small">{item.categoryName}</span>
                <br />
                <span class="small">{item.reason}</span>
                {note && <span class="badge warn"> {note}</span>}
              </li>
            );
          })}
        </ol>
      )}
      <p class="small muted">
        Categories:{" "}
        {(title === "Before" ? preview.categories.before : preview.categories.after).map((c) => c.name).join(", ") ||
          "none"}
      </p>
    </div>
  );
  return (
    <div aria-live="polite">
      <h3>{preview.anonymous ? "Preview for a visitor who is not signed in" : `Preview for ${preview.customerId}`}</h3>
      <ScheduleNote state={preview.ruleState} startsAt={preview.startsAt} endsAt={preview.endsAt} shown="preview" />
      <p role="status">{previewVerdict(preview, whose)}</p>
      {preview.anonymous && (
        <p class="muted">
          The popular shelf every visitor who is not signed in sees; a rule for a segment never applies to them.
        </p>
      )}
      {!preview.targetInCatalog && <NotInCatalog target={preview.target} />}
      {!preview.anonymous && !preview.storefrontAccount && (
        <p class="muted">
          This customer has no storefront account yet: online they see the popular shelf, and these are the shelves they
          would get once signed in.
        </p>
      )}
      <div class="side-by-side">
        {shelf("Before", preview.before, rankAfter, "leaves the shelf")}
        {shelf("After", preview.after, rankBefore, "new on the shelf")}
      </div>
    </div>
  );
}

function SimulationView({ simulation }: { simulation: Simulation }) {
  const rank = simulation.meanRankChange;
  return (
    <div aria-live="polite">
      <h3>Simulation over {count(simulation.shoppers, "shopper")}</h3>
      <ScheduleNote
        state={simulation.ruleState}
        startsAt={simulation.startsAt}
        endsAt={simulation.endsAt}
        shown="simulation"
      />
      {!simulation.targetInCatalog && <NotInCatalog target={simulation.target} />}
      {simulation.storefrontShoppers < simulation.shoppers && (
        <p class="muted">
          {simulation.storefrontShoppers.toLocaleString("en-US")} of them have a storefront account and see this shelf
          online today; the others would once signed in.
        </p>
      )}
      {simulation.shoppers === 0 ? (
        <p class="empty">No known shoppers yet: import customers with orders, then simulate again.</p>
      ) : (
        <>
          <dl class="tiles">
            <div class="tile">
              <dt>Shelves changed</dt>
              <dd class="figure">{percent(simulation.affectedShare, 1)}</dd>
              <dd class="muted small">
                {simulation.affected} of {count(simulation.shoppers, "shopper")}
              </dd>
              {simulation.storefrontShoppers < simulation.shoppers && (
                <dd class="muted small">
                  online today: {percent(simulation.storefrontAffectedShare, 1)} ({simulation.storefrontAffected} of{" "}
                  {simulation.storefrontShoppers} with a storefront account)
                </dd>
              )}
            </div>
            <div class="tile">
              <dt>Mean rank change of the target</dt>
              <dd class="figure">{rank == null ? "–" : `${rank > 0 ? "+" : ""}${rank.toFixed(2)} positions`}</dd>
              <dd class="muted small">
                {rank == null
                  ? "no sampled shopper has the target on a shelf (or it is *)"
                  : `over ${count(simulation.targetShoppers, "shopper")} with the target; positive is up`}
              </dd>
            </div>
            <div class="tile">
              <dt>Target enters / leaves</dt>
              <dd class="figure">
                {percent(simulation.enteredShare, 1)} / {percent(simulation.leftShare, 1)}
              </dd>
              <dd class="muted small">of sampled shoppers</dd>
            </div>
          </dl>
          {simulation.categoryExposure.length === 0 ? (
            <p class="muted">No category gains or loses item slots.</p>
          ) : (
            <TableWrap label="Item slots per category">
              <table>
                <caption>Item slots per category over all sampled shelves (categories losing exposure first)</caption>
                <thead>
                  <tr>
                    <th scope="col">Category</th>
                    <th scope="col">Before</th>
                    <th scope="col">After</th>
                    <th scope="col">Change</th>
                  </tr>
                </thead>
                <tbody>
                  {simulation.categoryExposure.map((row) => (
                    <tr key={row.categoryId} class={row.change < 0 ? "loses" : undefined}>
                      <th scope="row">
                        {row.categoryName}
                        {row.categoryName !== row.categoryId && <span class="muted small"> {row.categoryId}</span>}
                      </th>
                      <td>{row.before}</td>
                      <td>{row.after}</td>
                      <td>{row.change > 0 ? `+${row.change}` : row.change}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )}
          {simulation.categoriesLosingExposure.length > 0 && (
            <p>
              Categories losing exposure:{" "}
              {simulation.categoryExposure
                .filter((row) => row.change < 0)
                .map((row) => row.categoryName)
                .join(", ")}
              .
            </p>
          )}
        </>
      )}
    </div>
  );
}

function History({ versions }: { versions: Version[] }) {
  const previous = new Map(versions.map((version, index) => [version.version, versions[index - 1]?.snapshot]));
  return (
    <div>
      <h2>History</h2>
      <TableWrap label="Rule history">
        <table>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Change</th>
              <th scope="col">What changed</th>
              <th scope="col">By</th>
              <th scope="col">When</th>
              <th scope="col">Rule as changed</th>
            </tr>
          </thead>
          <tbody>
            {[...versions].reverse().map((version) => (
              <tr key={version.version}>
                <td>{version.version}</td>
                <td>{version.change}</td>
                <td class="small">
                  {version.change === "delete" ? "–" : whatChanged(previous.get(version.version), version.snapshot)}
                </td>
                <td>{version.changedBy}</td>
                <td>{dateTime(version.changedAt)}</td>
                <td class="small">
                  {describe(version.snapshot)}
                  {version.snapshot.startsAt || version.snapshot.endsAt ? `, ${scheduleWords(version.snapshot)}` : ""}
                  {version.snapshot.enabled ? "" : " (disabled)"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </div>
  );
}
