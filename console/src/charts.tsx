// Plain SVG charts the customer page and the Overview need beyond ui.tsx's: lines over real time (points
// placed by date, not evenly, with order dates marked and threshold lines), and a histogram. Like ui.tsx's,
// each is drawn at the width it is shown (useWidth), so its text keeps its size on a phone.
import type { ComponentChildren } from "preact";
import { day, timeZone } from "./api.ts";
import { labelRoom, placeLabels, timeTicks } from "./time-ticks.ts";
import { chartHeight, FiguresTable, useWidth } from "./ui.tsx";

export interface TimeSeries {
  name: string;
  points: { at: number; value: number; note?: string }[];
  /** CSS class of the line and its points: series-a, series-b or series-c. */
  tone: "series-a" | "series-b" | "series-c";
}

export interface Threshold {
  value: number;
  label: string;
  /** CSS class of the line: threshold-warn or threshold-danger. */
  tone: "threshold-warn" | "threshold-danger";
}

export interface TimeMark {
  at: number;
  /** CSS class of the tick, e.g. the order's channel (mark-web, mark-store). */
  tone: string;
  label: string;
}

/**
 * Lines over time from `from` to `to` (ms), with horizontal threshold lines and marks along the bottom;
 * its axis and tooltips on the retailer's clock, as every date in the console. Under it, its points as a
 * table: a row per time a point is drawn at, a column per line, each figure with its note.
 */
export function TimeChart({
  title,
  series,
  format,
  from,
  to,
  max,
  thresholds = [],
  marks = [],
  children,
}: {
  title: string;
  series: TimeSeries[];
  format: (value: number) => string;
  from: number;
  to: number;
  /** Top of the axis; the largest value by default. */
  max?: number;
  thresholds?: Threshold[];
  marks?: TimeMark[];
  /** Shown under the chart: what it means in words. */
  children?: ComponentChildren;
}) {
  const [ref, width] = useWidth<SVGSVGElement>();
  const height = chartHeight(width, 280);
  const left = 64;
  const right = 16;
  const top = 16;
  const bottom = 52;
  const values = series.flatMap((line) => line.points.map((point) => point.value));
  const axisTop = max ?? (Math.max(0, ...values, ...thresholds.map((line) => line.value)) || 1);
  const span = Math.max(1, to - from);
  const x = (at: number) => left + ((at - from) / span) * (width - left - right);
  const y = (value: number) => top + (1 - Math.min(value, axisTop) / axisTop) * (height - top - bottom);
  // Labels never overlap as drawn: a tick too near the one before is left unlabelled.
  const ticks = placeLabels(timeTicks(from, to, 5, timeZone.value), x, width);
  const markY = height - bottom + 6;
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
        {thresholds.map((line) => (
          <li key={line.label}>
            <span class={`swatch ${line.tone}`} aria-hidden="true" />
            {line.label}
          </li>
        ))}
        {[...new Map(marks.map((mark) => [mark.tone, mark])).values()].map((mark) => (
          <li key={mark.tone}>
            <span class={`swatch ${mark.tone}`} aria-hidden="true" />
            {mark.label}
          </li>
        ))}
      </ul>
      <svg ref={ref} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        {[0, 0.5, 1].map((share) => (
          <g key={share}>
            <line class="chart-grid" x1={left} x2={width - right} y1={y(axisTop * share)} y2={y(axisTop * share)} />
            <text class="chart-label" x={left - 6} y={y(axisTop * share)} text-anchor="end" dominant-baseline="middle">
              {format(axisTop * share)}
            </text>
          </g>
        ))}
        {thresholds.map((line) => (
          <line
            key={line.label}
            class={`chart-threshold ${line.tone}`}
            x1={left}
            x2={width - right}
            y1={y(line.value)}
            y2={y(line.value)}
          >
            <title>{`${line.label}: ${format(line.value)}`}</title>
          </line>
        ))}
        {ticks.map((tick) => {
          return (
            <g key={tick.at}>
              <line class="chart-grid" x1={x(tick.at)} x2={x(tick.at)} y1={height - bottom} y2={height - bottom + 4} />
              <text class="chart-label" x={x(tick.at)} y={height - 8} text-anchor={tick.anchor}>
                {tick.label}
              </text>
            </g>
          );
        })}
        <g class="chart-marks">
          {marks.map((mark) => (
            <line
              key={`${mark.at}-${mark.tone}`}
              class={`chart-mark ${mark.tone}`}
              x1={x(mark.at)}
              x2={x(mark.at)}
              y1={markY}
              y2={markY + 14}
            >
              <title>{`${mark.label}, ${day(mark.at)}`}</title>
            </line>
          ))}
        </g>
        {series.map((line) => (
          <g key={line.name} class={line.tone}>
            <path
              class="chart-line"
              d={line.points
                .map((point, index) => `${index ? "L" : "M"}${x(point.at).toFixed(1)},${y(point.value).toFixed(1)}`)
                .join(" ")}
            />
            {line.points.map((point) => (
              <circle key={point.at} class="chart-point" cx={x(point.at)} cy={y(point.value)} r="2.5">
                <title>{`${line.name}, ${day(point.at)}: ${pointFigure(point, format)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      {children}
      <FiguresTable
        title={title}
        head={["Date", ...series.map((line) => line.name)]}
        rows={[...new Set(series.flatMap((line) => line.points.map((point) => point.at)))]
          .sort((a, b) => a - b)
          .map((at) => [
            day(at),
            ...series.map((line) => {
              const point = line.points.find((one) => one.at === at);
              return point ? pointFigure(point, format) : "–";
            }),
          ])}
      />
    </figure>
  );
}

/** A point's figure as its tooltip and the figures table say it: "47% (fading, just before an order)". */
const pointFigure = (point: TimeSeries["points"][number], format: (value: number) => string) =>
  `${format(point.value)}${point.note ? ` (${point.note})` : ""}`;

export interface HistogramBar {
  /** The bucket in full (e.g. "100–200"), said in the bar's tooltip and heading its row of the table. */
  label: string;
  value: number;
  /** Said in the bar's tooltip, and in the table's last column. */
  note?: string;
}

/**
 * Vertical bars side by side, one per bucket, the count above each (upwards when too wide). The axis is
 * labelled at the buckets' edges (`edges[i]` at the left of bar i, `edges[bars.length]`, if given, at the
 * right of the last), so each label is one short number and a bucket in full is in its bar's tooltip. When
 * the labels would not fit apart, only every second (third, …) is written, so they never overlap. Under
 * it, the bars as a table: a row per bucket, its figure and its note, under `headings`.
 */
export function Histogram({
  title,
  bars,
  edges,
  format,
  headings,
  children,
}: {
  title: string;
  bars: HistogramBar[];
  edges: string[];
  format: (value: number) => string;
  /** The table's column headings: the buckets, their figures, and their notes when the bars have them. */
  headings: { bucket: string; value: string; note?: string };
  children?: ComponentChildren;
}) {
  const [ref, width] = useWidth<SVGSVGElement>();
  const height = chartHeight(width, 260);
  const left = 24;
  const right = 24;
  const bottom = 44;
  const max = Math.max(0, ...bars.map((bar) => bar.value)) || 1;
  const slot = (width - left - right) / Math.max(1, bars.length);
  // A count wider than its bar's slot (8 px a character, as in labelRoom) is written upwards, with room
  // for it above the tallest bar.
  const longest = Math.max(0, ...bars.map((bar) => format(bar.value).length));
  const upwards = longest * 8 + 4 > slot;
  const top = upwards ? labelRoom(longest) : 24;
  const barWidth = Math.max(4, slot * 0.8);
  const axis = height - bottom;
  const every = Math.max(1, Math.ceil(labelRoom(Math.max(0, ...edges.map((edge) => edge.length))) / slot));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg ref={ref} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        <line class="chart-grid" x1={left} x2={width - right} y1={axis} y2={axis} />
        {bars.map((bar, index) => {
          const barHeight = (bar.value / max) * (height - top - bottom);
          const x = left + index * slot + (slot - barWidth) / 2;
          return (
            <g key={bar.label} class="histogram-bar">
              <title>{`${bar.label}: ${format(bar.value)}${bar.note ? ` (${bar.note})` : ""}`}</title>
              <rect
                class="chart-bar"
                x={x}
                y={axis - barHeight}
                width={barWidth}
                height={Math.max(bar.value > 0 ? 1 : 0, barHeight)}
                rx="2"
              />
              <text
                class="chart-value"
                x={x + barWidth / 2}
                y={axis - barHeight - 6}
                text-anchor={upwards ? "start" : "middle"}
                dominant-baseline={upwards ? "middle" : undefined}
                transform={upwards ? `rotate(-90 ${x + barWidth / 2} ${axis - barHeight - 6})` : undefined}
              >
                {bar.value > 0 ? format(bar.value) : ""}
              </text>
            </g>
          );
        })}
        {edges.slice(0, bars.length + 1).map((edge, index) =>
          index % every === 0 ? (
            <g key={index} class="histogram-edge">
              <line class="chart-grid" x1={left + index * slot} x2={left + index * slot} y1={axis} y2={axis + 5} />
              <text class="chart-label" x={left + index * slot} y={axis + 20} text-anchor="middle">
                {edge}
              </text>
            </g>
          ) : null,
        )}
      </svg>
      {children}
      <FiguresTable
        title={title}
        head={[headings.bucket, headings.value, ...(headings.note ? [headings.note] : [])]}
        rows={bars.map((bar) => [bar.label, format(bar.value), ...(headings.note ? [bar.note ?? "–"] : [])])}
      />
    </figure>
  );
}
