// `patron evaluate`: measures category propensity on a time split against popularity and
// own-frequency baselines, printing one JSON object. A thin shell over cli/evaluate and worker/core.

import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { type RankingOptionsOverride, rankingOptionsWith } from "../../worker/core/ranking/options.ts";
import { type CompleteJourneyLevel, completeJourneyLevels, readCompleteJourney } from "../evaluate/completejourney.ts";
import { evaluateCategoryRanking } from "../evaluate/evaluate.ts";
import { defaultGeneratedOptions, evaluateGenerated, generateDataset, plantedTruth } from "../evaluate/generated.ts";
import { wholeNumber } from "../options.ts";

interface EvaluateFlags {
  dataset: string;
  cutoff: string;
  until?: string;
  k: number;
  level: string;
  options?: string;
  customers: number;
  seed: number;
  window: number;
  json?: boolean;
}

/** An input problem the user can fix: reported on stderr with exit code 2, no stack trace. */
class EvaluateInputError extends Error {}

function parseDate(value: string, flag: string): Date {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new EvaluateInputError(`${flag} must be a date (YYYY-MM-DD), got ${value}`);
  return new Date(ms);
}

function parseOptions(json: string | undefined): RankingOptionsOverride {
  if (json === undefined) return {};
  try {
    return JSON.parse(json) as RankingOptionsOverride;
  } catch (error) {
    throw new EvaluateInputError(`--options must be JSON (${(error as Error).message}), got ${json}`);
  }
}

export function register(program: Command) {
  program
    .command("evaluate")
    .description("Score top-k category recommendations on a time split against popularity and own-history baselines.")
    .requiredOption(
      "--dataset <path>",
      "a Complete Journey folder, or `generated` (customers from db/seed/generate.ts)",
    )
    .option("--cutoff <date>", "train on purchases before this date, score those after it", "2017-10-01")
    .option("--until <date>", "ignore purchases from this date on (a validation window inside training)")
    .option("--k <n>", "how many categories to recommend", wholeNumber(1), 5)
    .option(
      "--level <level>",
      `catalog level for Complete Journey: ${completeJourneyLevels.join(", ")}`,
      "product_category",
    )
    .option("--options <json>", 'ranking options override, e.g. \'{"categories":{"priorStrength":3}}\'')
    .option("--customers <n>", "generated: how many customers", wholeNumber(1), defaultGeneratedOptions.customers)
    .option("--seed <n>", "generated: random seed", wholeNumber(0), defaultGeneratedOptions.seed)
    .option(
      "--window <days>",
      "generated: days after the cutoff that are scored (the cutoff is today − window)",
      wholeNumber(1),
      90,
    )
    .option("--json", "print only the JSON result")
    .action(async (flags: EvaluateFlags) => {
      try {
        await runEvaluate(flags);
      } catch (error) {
        if (!(error instanceof EvaluateInputError)) throw error;
        process.stderr.write(`patron evaluate: ${error.message}\n`);
        process.exitCode = 2;
      }
    });
}

async function runEvaluate(flags: EvaluateFlags): Promise<void> {
  const { k } = flags;
  const options = rankingOptionsWith(parseOptions(flags.options));
  if (flags.dataset === "generated") {
    const dataset = generateDataset({
      ...defaultGeneratedOptions,
      customers: flags.customers,
      seed: flags.seed,
    });
    const result = evaluateGenerated(dataset, k, flags.window, options);
    const truth = plantedTruth(dataset, 30, options);
    process.stdout.write(`${JSON.stringify({ ...result, plantedTruth: truth })}\n`);
    return;
  }
  const cutoff = parseDate(flags.cutoff, "--cutoff");
  const until = flags.until ? parseDate(flags.until, "--until") : undefined;
  if (!completeJourneyLevels.includes(flags.level as CompleteJourneyLevel)) {
    throw new EvaluateInputError(`--level must be one of ${completeJourneyLevels.join(", ")}, got ${flags.level}`);
  }
  if (!existsSync(flags.dataset) || !statSync(flags.dataset).isDirectory())
    throw new EvaluateInputError(
      `--dataset must be a Complete Journey folder (products.csv, transactions.csv …) or "generated": no folder ${flags.dataset}`,
    );
  const lines = await readCompleteJourney(flags.dataset, flags.level as CompleteJourneyLevel).catch(
    (error: unknown) => {
      const { code, path: missing } = error as NodeJS.ErrnoException;
      if (code === "ENOENT")
        throw new EvaluateInputError(`--dataset ${flags.dataset} has no ${path.basename(String(missing))}`);
      throw error;
    },
  );
  const result = evaluateCategoryRanking({ lines, cutoff, until, k, level: flags.level, options });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
