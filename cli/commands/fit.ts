// `patron fit`: fits BG/NBD (and Gamma-Gamma when amounts are given) to an event-log CSV up to a
// calibration cutoff and prints the parameters. A thin shell over worker/core/models: it reads and
// validates the file, then hands plain events to summarizeEvents, fitBgNbd and fitGammaGamma.
// It does not write parameters anywhere; the nightly job owns model_params.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { parse } from "csv-parse/sync";
import { fitBgNbd } from "../../worker/core/models/bg-nbd.ts";
import { fitGammaGamma } from "../../worker/core/models/gamma-gamma.ts";
import {
  dayToIsoDate,
  type PurchaseEvent,
  parseDay,
  summarizeEvents,
  type TimeUnit,
} from "../../worker/core/models/summary.ts";

interface FitFlags {
  input?: string;
  customer?: string;
  date?: string;
  amount?: string;
  cutoff?: string;
  unit: string;
  json?: boolean;
}

/** An input problem the user can fix: reported on stderr with exit code 2, no stack trace. */
class FitInputError extends Error {}

const units: readonly TimeUnit[] = ["week", "day"];

export function register(program: Command) {
  program
    .command("fit")
    .description("Fit BG/NBD (and Gamma-Gamma with --amount) to an event log up to a calibration cutoff.")
    .option("--input <csv>", "event log CSV with a header row (required)")
    .option("--customer <column>", "column holding the customer id (required)")
    .option("--date <column>", "column holding the purchase date, YYYYMMDD or ISO (required)")
    .option("--amount <column>", "column holding the order value; enables the Gamma-Gamma spend model")
    .option("--cutoff <YYYY-MM-DD>", "last day of the calibration period, inclusive (required)")
    .option("--unit <unit>", `time unit of the fitted model: ${units.join(" or ")}`, "week")
    .option("--json", "print one JSON object instead of a readable summary")
    .action(async (flags: FitFlags) => {
      try {
        await runFit(flags);
      } catch (error) {
        if (!(error instanceof FitInputError)) throw error;
        process.stderr.write(`patron fit: ${error.message}\n`);
        process.exitCode = 2;
      }
    });
}

async function runFit(flags: FitFlags): Promise<void> {
  const missing = (["input", "customer", "date", "cutoff"] as const).filter((flag) => !flags[flag]);
  if (missing.length > 0) throw new FitInputError(`missing ${missing.map((flag) => `--${flag}`).join(", ")}`);
  if (!units.includes(flags.unit as TimeUnit)) {
    throw new FitInputError(`--unit must be ${units.join(" or ")}, got "${flags.unit}"`);
  }
  const unit = flags.unit as TimeUnit;
  const cutoffDay = parseDay(flags.cutoff!);
  if (cutoffDay === null) throw new FitInputError(`--cutoff must be a date like 1997-09-30, got "${flags.cutoff}"`);

  const events = await readEvents(flags.input!, flags.customer!, flags.date!, flags.amount);
  const summaries = summarizeEvents(events, { cutoffDay, unit });
  if (summaries.length === 0) {
    throw new FitInputError(`no purchases on or before the cutoff ${dayToIsoDate(cutoffDay)} in ${flags.input}`);
  }

  const started = performance.now();
  const bgnbd = fitBgNbd(summaries);
  const spenders = summaries.filter((summary) => summary.monetaryCount > 0);
  const gammaGamma =
    flags.amount && spenders.length > 0
      ? fitGammaGamma(spenders.map((summary) => ({ count: summary.monetaryCount, meanValue: summary.monetaryMean })))
      : null;
  const fitMs = performance.now() - started;

  if (!bgnbd.converged) process.stderr.write("patron fit: warning: BG/NBD fit did not converge\n");
  if (gammaGamma && !gammaGamma.converged)
    process.stderr.write("patron fit: warning: Gamma-Gamma fit did not converge\n");
  if (flags.amount && !gammaGamma) {
    process.stderr.write("patron fit: no repeat purchase with a positive amount; Gamma-Gamma not fitted\n");
  }

  if (flags.json) {
    const result = {
      bgnbd: { r: bgnbd.r, alpha: bgnbd.alpha, a: bgnbd.a, b: bgnbd.b, logLikelihood: bgnbd.logLikelihood },
      gammaGamma: gammaGamma ? { p: gammaGamma.p, q: gammaGamma.q, gamma: gammaGamma.gamma } : null,
      customers: summaries.length,
      fitMs: Math.round(fitMs * 10) / 10,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const repeaters = summaries.filter((summary) => summary.x > 0).length;
  const lines = [
    `Calibration: ${summaries.length} customers (${repeaters} with a repeat purchase), purchases up to ${dayToIsoDate(cutoffDay)}, time in ${unit}s`,
    `BG/NBD       r ${bgnbd.r.toFixed(4)}  alpha ${bgnbd.alpha.toFixed(4)} ${unit}s  a ${bgnbd.a.toFixed(4)}  b ${bgnbd.b.toFixed(4)}`,
    `             log-likelihood ${bgnbd.logLikelihood.toFixed(2)}, ${bgnbd.iterations} iterations, ${bgnbd.converged ? "converged" : "NOT converged"}`,
    gammaGamma
      ? `Gamma-Gamma  p ${gammaGamma.p.toFixed(4)}  q ${gammaGamma.q.toFixed(4)}  gamma ${gammaGamma.gamma.toFixed(4)} (${gammaGamma.customers} repeat customers)`
      : "Gamma-Gamma  not fitted (no --amount, or no repeat purchase with a positive amount)",
    `Fit time     ${fitMs.toFixed(0)} ms`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function readEvents(
  file: string,
  customerColumn: string,
  dateColumn: string,
  amountColumn: string | undefined,
): Promise<PurchaseEvent[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new FitInputError(`cannot read --input ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let rows: string[][];
  try {
    rows = parse(text, { skip_empty_lines: true, trim: true, relax_column_count: true }) as string[][];
  } catch (error) {
    throw new FitInputError(`${file} is not valid CSV: ${(error as Error).message}`);
  }
  const header = rows[0];
  if (!header) throw new FitInputError(`${file} is empty`);
  const columnIndex = (name: string, flag: string): number => {
    const index = header.indexOf(name);
    if (index < 0) {
      throw new FitInputError(`${flag} column "${name}" is not in ${file}; available columns: ${header.join(", ")}`);
    }
    return index;
  };
  const customerIndex = columnIndex(customerColumn, "--customer");
  const dateIndex = columnIndex(dateColumn, "--date");
  const amountIndex = amountColumn === undefined ? -1 : columnIndex(amountColumn, "--amount");

  const events: PurchaseEvent[] = [];
  for (let row = 1; row < rows.length; row++) {
    const cells = rows[row]!;
    const line = row + 1;
    const customer = cells[customerIndex] ?? "";
    if (customer === "") throw new FitInputError(`line ${line}: empty customer in column "${customerColumn}"`);
    const rawDate = cells[dateIndex] ?? "";
    const day = parseDay(rawDate);
    if (day === null) {
      throw new FitInputError(`line ${line}: "${rawDate}" in column "${dateColumn}" is not a date (YYYYMMDD or ISO)`);
    }
    if (amountIndex < 0) {
      events.push({ customer, day });
      continue;
    }
    const rawAmount = cells[amountIndex] ?? "";
    const amount = Number(rawAmount);
    if (rawAmount === "" || !Number.isFinite(amount)) {
      throw new FitInputError(`line ${line}: "${rawAmount}" in column "${amountColumn}" is not a number`);
    }
    events.push({ customer, day, amount });
  }
  return events;
}
