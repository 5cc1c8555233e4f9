// Small shared pieces: loading a route's data, showing a problem, plain SVG bar charts drawn at the
// width they are shown (and a chart's figures as a table, under every chart), the nightly job runner (start a run, poll it,
// show its progress).
import { nice, ticks } from "d3-array";
import type { ComponentChildren, RefObject } from "preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiProblem, api, sessionEnded, signedIn } from "./api.ts";
import { labelRoom } from "./time-ticks.ts";

export interface Loaded<T> {
  data: T | null;
  problem: ApiProblem | null;
  loading: boolean;
  reload: () => void;
}

/** GETs `path` (again whenever it changes or `reload` is called). */
export function useData<T>(path: string | null): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; problem: ApiProblem | null; loading: boolean }>({
    data: null,
    problem: null,
    loading: path !== null,
  });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setState((previous) => ({ ...previous, loading: true }));
    api<T>("GET", path).then(
      (data) => live && setState({ data, problem: null, loading: false }),
      (problem: unknown) =>
        live &&
        setState({
          data: null,
          problem: problem instanceof ApiProblem ? problem : new ApiProblem(0, "internal", String(problem)),
          loading: false,
        }),
    );
    return () => {
      live = false;
    };
  }, [path, generation]);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { ...state, reload };
}

/** What this page's history entry keeps under `name` (keepInEntry): Back, Forward and a reload find it. */
export function keptInEntry<T>(name: string): T | undefined {
  return (history.state as Record<string, T> | null)?.[name];
}

/**
 * Keeps `value` under `name` in this page's history entry, beside what other parts of the page keep there:
 * state a page restores on Back or a reload, never in the address (an email typed stays out of URLs).
 */
export function keepInEntry(name: string, value: unknown): void {
  history.replaceState({ ...history.state, [name]: value }, "");
}

/**
 * Focus that follows a confirmation or form shown in place of the button that opened it: into `inside`
 * when it opens, back to `opener` when it closes (done or cancelled), never left on the page's body.
 * Nothing is focused before it first opens.
 */
export function useFocusFollows<Inside extends HTMLElement, Opener extends HTMLElement>(open: boolean) {
  const inside = useRef<Inside>(null);
  const opener = useRef<Opener>(null);
  const opened = useRef(false);
  useEffect(() => {
    if (open) inside.current?.focus();
    else if (opened.current) opener.current?.focus();
    opened.current ||= open;
  }, [open]);
  return { inside, opener };
}

/**
 * A confirmation before something that cannot be undone: the question, the danger button and Cancel,
 * which Escape presses too. `cancel` is Cancel's ref (useFocusFollows puts the focus there).
 */
export function Confirm({
  id,
  question,
  yes,
  onYes,
  onCancel,
  cancel,
}: {
  id: string;
  question: ComponentChildren;
  yes: string;
  onYes: () => void;
  onCancel: () => void;
  cancel: RefObject<HTMLButtonElement | null>;
}) {
  return (
    <div
      class="confirm"
      role="alertdialog"
      aria-labelledby={id}
      onKeyDown={(event) => {
        if (event.key === "Escape") onCancel();
      }}
    >
      <p id={id}>{question}</p>
      <div class="actions">
        <button type="button" class="danger" onClick={onYes}>
          {yes}
        </button>
        <button ref={cancel} type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}

/**
 * A table that scrolls sideways in its own box when the screen is narrower than it (a phone), so the
 * page never does. The box takes the keyboard's focus, so columns out of view can be scrolled to
 * without a pointer, and is named by `label` for a screen reader landing on it.
 */
export function TableWrap({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling box must take the focus to scroll by keyboard (WCAG 2.1.1).
    <section class="table-wrap" tabIndex={0} aria-label={label}>
      {children}
    </section>
  );
}

/**
 * A chart's figures as a table, in a disclosure under it ("Figures as a table"), built from the data the
 * chart draws with the chart's own formatting. A screen reader reads a chart (an SVG of role img) by its
 * name alone, and its figures are otherwise only in tooltips a pointer shows. The first cell of each row
 * heads it; `children` follow the table (a note on the rows).
 */
export function FiguresTable({
  title,
  head,
  rows,
  children,
}: {
  title: string;
  head: string[];
  rows: string[][];
  children?: ComponentChildren;
}) {
  return (
    <details class="figures">
      {/* Named with the chart's title: a page with two charts has two of these. */}
      <summary aria-label={`Figures as a table: ${title}`}>Figures as a table</summary>
      <TableWrap label={`${title}: figures`}>
        <table>
          <caption class="visually-hidden">{title}</caption>
          <thead>
            <tr>
              {head.map((heading) => (
                <th scope="col" key={heading}>
                  {heading}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map(([first, ...cells], index) => (
              // Keyed by place: rows may share their first cell (two points on one day).
              <tr key={index}>
                <th scope="row">{first}</th>
                {cells.map((cell, column) => (
                  <td key={column}>{cell}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {children}
    </details>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

export function ProblemNote({ problem }: { problem: ApiProblem }) {
  // A 401 still shown once signed in again: what met it was refused then, and was not carried out.
  const message =
    problem.status === 401 && signedIn.value
      ? "This was sent after the session had ended, so it was not carried out: do it again."
      : problem.message;
  return (
    <div class="problem" role="alert">
      <p>{message}</p>
      {problem.issues.length > 0 && (
        <ul>
          {problem.issues.map((issue) => (
            <li key={`${issue.path.join(".")}:${issue.message}`}>{issue.message}</li>
          ))}
        </ul>
      )}
      {problem.requestId && <p class="muted small">Request id {problem.requestId}</p>}
    </div>
  );
}

/** Page headings shown since the document loaded: the first page is where the browser put focus itself. */
let headingsShown = 0;

/** After signing in: the page the console opens takes the focus the sign-in form held (it is gone). */
export function focusNextHeading(): void {
  headingsShown = Math.max(headingsShown, 1);
}

/**
 * The page's heading, focused when the app opens another page (a lookup, a link followed): a keyboard
 * or screen reader user starts at the new page's title, not at the top of the document. The first page
 * after a load leaves focus where the browser puts it, so Tab still reaches "Skip to content" first.
 */
export function PageHeader({ title, children }: { title: ComponentChildren; children?: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (headingsShown++ > 0) heading.current?.focus();
  }, []);
  // The browser's tab and history name the page by its heading (read once it is drawn: it may be markup).
  useEffect(() => {
    // Not while the page is kept behind the sign-in form: the tab says the session ended.
    if (sessionEnded.value) return;
    const text = heading.current?.textContent?.trim();
    document.title = text ? `${text} · Patron console` : "Patron console";
  });
  return (
    <div class="page-header">
      <h1 ref={heading} tabIndex={-1}>
        {title}
      </h1>
      {children}
    </div>
  );
}

/**
 * A chart's width: its element's in CSS px, so the chart is laid out at the size it is shown and its text
 * stays at its own size on a phone. Measured before the first paint, then again a frame after each
 * resize (a re-render inside the observer's callback would be a resize loop: the chart's height follows
 * its width). 760 where there is no ResizeObserver: the picture is then scaled to fit, text and all.
 */
export function useWidth<T extends Element>(): [RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(760);
  useLayoutEffect(() => {
    const element = ref.current;
    if (!element || typeof ResizeObserver === "undefined") return;
    const measure = () => setWidth(Math.round(element.getBoundingClientRect().width) || 760);
    measure();
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(measure);
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      cancelAnimationFrame(frame);
    };
  }, []);
  return [ref, width];
}

/**
 * A chart's height at `width`: `tall` from 760 px on (a wider card draws the chart wider, not taller), in
 * proportion below that, but never under 200.
 */
export const chartHeight = (width: number, tall: number) =>
  Math.max(200, Math.round((tall * Math.min(width, 760)) / 760));

export interface Bar {
  label: string;
  /** null: no figure to draw (a rate of nothing), written "–" with no bar, never as a 0. */
  value: number | null;
  note?: string;
}

/**
 * Horizontal bars scaled to the largest value, with the figure written beside each bar. Where that leaves
 * the bars under 120 px (a phone), each bar's label and figure go on a line above it, and the bar has
 * the whole width. Under it, the bars as a table: a row per bar, its figure and its note, under `headings`.
 */
export function BarChart({
  title,
  bars,
  format,
  headings,
}: {
  title: string;
  bars: Bar[];
  format: (value: number) => string;
  /** The table's column headings: the bars' labels, their figures, and their notes when the bars have them. */
  headings: { label: string; value: string; note?: string };
}) {
  const [ref, width] = useWidth<SVGSVGElement>();
  const max = Math.max(0, ...bars.map((bar) => bar.value ?? 0));
  const formatted = (bar: Bar) => (bar.value === null ? "–" : format(bar.value));
  const figure = (bar: Bar) => `${formatted(bar)}${bar.note ? ` · ${bar.note}` : ""}`;
  // Room for the longest figure after its bar: a little over labelRoom's, figures being mostly wide digits.
  const figureRoom = labelRoom(Math.max(0, ...bars.map((bar) => figure(bar).length))) + 16;
  const stacked = width - 140 - figureRoom < 120;
  const rowHeight = stacked ? 44 : 30;
  const labelWidth = stacked ? 0 : 140;
  const barSpace = stacked ? width - 2 : width - labelWidth - figureRoom;
  const height = bars.length * rowHeight + 8;
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg ref={ref} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        {bars.map((bar, index) => {
          const y = index * rowHeight + 4;
          const length = bar.value === null ? 0 : max > 0 ? Math.max(1, (bar.value / max) * barSpace) : 1;
          const textY = stacked ? y + 10 : y + rowHeight / 2;
          return (
            <g key={bar.label}>
              <title>{`${bar.label}: ${formatted(bar)}${bar.note ? ` (${bar.note})` : ""}`}</title>
              <text
                x={stacked ? 0 : labelWidth - 8}
                y={textY}
                class="chart-label"
                text-anchor={stacked ? "start" : "end"}
                dominant-baseline="middle"
              >
                {bar.label}
              </text>
              <rect
                x={labelWidth}
                y={stacked ? y + 20 : y + 4}
                width={length}
                height={rowHeight - (stacked ? 24 : 10)}
                rx="3"
                class="chart-bar"
              />
              <text
                x={stacked ? width : labelWidth + length + 6}
                y={textY}
                class="chart-value"
                text-anchor={stacked ? "end" : "start"}
                dominant-baseline="middle"
              >
                {figure(bar)}
              </text>
            </g>
          );
        })}
      </svg>
      <FiguresTable
        title={title}
        head={[headings.label, headings.value, ...(headings.note ? [headings.note] : [])]}
        rows={bars.map((bar) => [bar.label, formatted(bar), ...(headings.note ? [bar.note ?? "–"] : [])])}
      />
    </figure>
  );
}

export interface NightlyRun {
  runId: string;
  status: string;
  processed: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

/** The statuses of a run that has ended. */
export const finished = ["done", "errored", "terminated"];

/**
 * A button that starts the nightly model job and shows its progress by polling the run until it ends:
 * `onStart` once it has started, `onDone` once it is done, `onEnd` once it has ended whichever way.
 */
export function RunNightly({
  onStart,
  onDone,
  onEnd,
  label = "Run the nightly job",
}: {
  onStart?: () => void;
  onDone: () => void;
  onEnd?: () => void;
  label?: string;
}) {
  const [run, setRun] = useState<NightlyRun | null>(null);
  const [problem, setProblem] = useState<ApiProblem | null>(null);
  const [starting, setStarting] = useState(false);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  async function poll(runId: string) {
    try {
      const latest = await api<NightlyRun>("GET", `/v1/admin/jobs/nightly/${encodeURIComponent(runId)}`);
      setRun(latest);
      if (finished.includes(latest.status)) {
        if (latest.status === "done") onDone();
        onEnd?.();
        return;
      }
    } catch (error) {
      // The run may not be visible yet (404), or the service is briefly busy (503): keep polling.
      if (!(error instanceof ApiProblem) || (error.status !== 404 && error.status !== 503)) {
        setProblem(error instanceof ApiProblem ? error : null);
        return;
      }
    }
    timer.current = setTimeout(() => poll(runId), 1000);
  }
  async function start() {
    setProblem(null);
    setStarting(true);
    try {
      // A 503 means nothing was started (docs/api.md): try again a few times before saying so.
      let started: NightlyRun | null = null;
      for (let attempt = 1; !started; attempt++) {
        try {
          started = await api<NightlyRun>("POST", "/v1/admin/jobs/nightly");
        } catch (error) {
          if (!(error instanceof ApiProblem) || error.status !== 503 || attempt >= 4) throw error;
          await new Promise((resolve) => setTimeout(resolve, 2000 * attempt));
        }
      }
      setRun(started);
      onStart?.();
      if (finished.includes(started.status)) {
        if (started.status === "done") onDone();
        onEnd?.();
      } else timer.current = setTimeout(() => poll(started.runId), 500);
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error : new ApiProblem(0, "internal", String(error)));
    } finally {
      setStarting(false);
    }
  }
  const running = starting || (run !== null && !finished.includes(run.status));
  return (
    <div class="runner">
      {/* aria-disabled, not disabled: the button pressed keeps the keyboard's focus while the job runs. */}
      <button type="button" class="primary" onClick={() => !running && start()} aria-disabled={running}>
        {running ? "Running…" : label}
      </button>
      {starting && !run && (
        <p role="status" class="muted">
          Starting the nightly job…
        </p>
      )}
      {run && (
        <p role="status" aria-live="polite" class={run.status === "errored" ? "problem" : "muted"}>
          Run {run.runId}: {run.status}
          {run.processed > 0 ? `, ${run.processed.toLocaleString("en-US")} customers processed` : ""}
          {run.error ? ` (${run.error})` : ""}
          {run.status === "done" ? "." : running ? "…" : ""}
        </p>
      )}
      {running && <progress aria-label="Nightly job progress" />}
      {problem && <ProblemNote problem={problem} />}
    </div>
  );
}

export interface Series {
  name: string;
  /** One value per x label; null leaves a gap. */
  values: (number | null)[];
  /** CSS class of the line and its points: series-a, series-b or series-c. */
  tone: "series-a" | "series-b" | "series-c";
  dashed?: boolean;
}

/**
 * Lines over shared x labels, with a legend, axis figures, and an optional shaded span (e.g. a holdout
 * period); under it, its figures as a table (one row per label, headed `labelsHeading`), unless
 * `figuresTable` is false because the page tables the same figures beside it.
 */
export function LineChart({
  title,
  labels,
  labelsHeading,
  series,
  format,
  shade,
  figuresTable = true,
}: {
  title: string;
  labels: string[];
  labelsHeading: string;
  series: Series[];
  format: (value: number) => string;
  shade?: { from: number; label: string };
  figuresTable?: boolean;
}) {
  const [ref, width] = useWidth<SVGSVGElement>();
  const height = chartHeight(width, 260);
  const left = 64;
  const right = 16;
  const top = 16;
  const bottom = 36;
  const all = series.flatMap((line) => line.values.filter((value): value is number => value != null));
  // The axis ends on a round figure and is marked at round steps (0, 20, 40 …, not 0, 35.5, 71).
  const [, max] = nice(0, Math.max(0, ...all) || 1, 4);
  const gridLines = ticks(0, max, 4);
  const count = labels.length;
  const x = (index: number) => left + (count <= 1 ? 0 : (index / (count - 1)) * (width - left - right));
  const y = (value: number) => top + (1 - value / max) * (height - top - bottom);
  const path = (values: (number | null)[]) => {
    let d = "";
    let pen = false;
    values.forEach((value, index) => {
      if (value == null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(index).toFixed(1)},${y(value).toFixed(1)} `;
      pen = true;
    });
    return d.trim();
  };
  // Every `tick`-th label: at most six, and never overlapping. The first is drawn from its point to the
  // right and the last (or one too near the right edge to centre) to the left, so neighbours need one
  // and a half labels' room between points.
  const slot = count <= 1 ? width : (width - left - right) / (count - 1);
  const longest = Math.max(0, ...labels.map((label) => label.length));
  const tick = Math.max(1, Math.ceil(count / 6), Math.ceil((1.5 * labelRoom(longest)) / slot));
  // The last label always shows (the axis says where it ends: "7+"), in place of the one before it,
  // which stands less than a step from it (the first label stays).
  const shown = new Set(labels.flatMap((_, index) => (index % tick === 0 ? [index] : [])));
  if (count > 1 && !shown.has(count - 1)) {
    const before = Math.floor((count - 1) / tick) * tick;
    if (before > 0) shown.delete(before);
    shown.add(count - 1);
  }
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <ul class="legend">
        {series.map((line) => (
          <li key={line.name}>
            <span class={`swatch ${line.tone}`} aria-hidden="true" />
            {line.name}
          </li>
        ))}
        {shade && (
          <li>
            <span class="swatch shade" aria-hidden="true" />
            {shade.label}
          </li>
        )}
      </ul>
      <svg ref={ref} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        {shade && shade.from < count && (
          <rect
            class="chart-shade"
            x={x(shade.from) - (count > 1 ? (x(1) - x(0)) / 2 : 0)}
            y={top}
            width={width - right - x(shade.from) + (count > 1 ? (x(1) - x(0)) / 2 : 0)}
            height={height - top - bottom}
          />
        )}
        {gridLines.map((value) => (
          <g key={value}>
            <line class="chart-grid" x1={left} x2={width - right} y1={y(value)} y2={y(value)} />
            <text class="chart-label" x={left - 6} y={y(value)} text-anchor="end" dominant-baseline="middle">
              {format(value)}
            </text>
          </g>
        ))}
        {labels.map((label, index) =>
          shown.has(index) ? (
            <text
              key={label}
              class="chart-label"
              x={x(index)}
              y={height - 12}
              text-anchor={
                count > 1 && (index === count - 1 || x(index) + labelRoom(label.length) / 2 > width)
                  ? "end"
                  : index === 0
                    ? "start"
                    : "middle"
              }
            >
              {label}
            </text>
          ) : null,
        )}
        {series.map((line) => (
          <g key={line.name} class={line.tone}>
            <path d={path(line.values)} class={line.dashed ? "chart-line dashed" : "chart-line"} />
            {line.values.map((value, index) =>
              value == null ? null : (
                <circle key={index} cx={x(index)} cy={y(value)} r="3" class="chart-point">
                  <title>{`${line.name}, ${labels[index]}: ${format(value)}`}</title>
                </circle>
              ),
            )}
          </g>
        ))}
      </svg>
      {figuresTable && (
        <FiguresTable
          title={title}
          head={[labelsHeading, ...series.map((line) => line.name)]}
          rows={labels.map((label, index) => [
            label,
            ...series.map((line) => {
              const value = line.values[index];
              return value == null ? "–" : format(value);
            }),
          ])}
        >
          {shade && shade.from < count && (
            <p class="small muted">
              {shade.label}: from {labels[shade.from]} on.
            </p>
          )}
        </FiguresTable>
      )}
    </figure>
  );
}
