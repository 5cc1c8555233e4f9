// `patron evaluate`: measures category propensity on a time split against popularity and
// own-frequency baselines, printing one JSON object. A thin shell over cli/evaluate and worker/core.

import type { Command } from "commander";
import { type RankingOptionsOverride, rankingOptionsWith } from "../../worker/core/ranking/options.ts";
import { type CompleteJourneyLevel, completeJourneyLevels, readCompleteJourney } from "../evaluate/completejourney.ts";
import { evaluateCategoryRanking } from "../evaluate/evaluate.ts";
import { defaultGeneratedOptions, evaluateGenerated, generateDataset, plantedTruth } from "../evaluate/generated.ts";

interface EvaluateFlags {
  dataset: string;
  cutoff: string;
  until?: string;
  k: string;
  level: string;
  options?: string;
  customers: string;
  seed: string;
  window: string;
  json?: boolean;
}

function parseDate(value: string, flag: string): Date {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`evaluate: ${flag} must be a date (YYYY-MM-DD), got ${value}`);
  return new Date(ms);
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
    .option("--k <n>", "how many categories to recommend", "5")
    .option(
      "--level <level>",
      `catalog level for Complete Journey: ${completeJourneyLevels.join(", ")}`,
      "product_category",
    )
    .option("--options <json>", 'ranking options override, e.g. \'{"categories":{"priorStrength":3}}\'')
    .option("--customers <n>", "generated: how many customers", String(defaultGeneratedOptions.customers))
    .option("--seed <n>", "generated: random seed", String(defaultGeneratedOptions.seed))
    .option("--window <days>", "generated: days after the cutoff that are scored (the cutoff is today − window)", "90")
    .option("--json", "print only the JSON result")
    .action(async (flags: EvaluateFlags) => {
      const k = Number.parseInt(flags.k, 10);
      if (!(k > 0)) throw new Error(`evaluate: --k must be a positive integer, got ${flags.k}`);
      const options = rankingOptionsWith(flags.options ? (JSON.parse(flags.options) as RankingOptionsOverride) : {});
      if (flags.dataset === "generated") {
        const dataset = generateDataset({
          ...defaultGeneratedOptions,
          customers: Number.parseInt(flags.customers, 10),
          seed: Number.parseInt(flags.seed, 10),
        });
        const windowDays = Number.parseInt(flags.window, 10);
        const result = evaluateGenerated(dataset, k, windowDays, options);
        const truth = plantedTruth(dataset, 30, options);
        process.stdout.write(`${JSON.stringify({ ...result, plantedTruth: truth })}\n`);
        return;
      }
      const cutoff = parseDate(flags.cutoff, "--cutoff");
      const until = flags.until ? parseDate(flags.until, "--until") : undefined;
      if (!completeJourneyLevels.includes(flags.level as CompleteJourneyLevel)) {
        throw new Error(`evaluate: --level must be one of ${completeJourneyLevels.join(", ")}`);
      }
      const lines = await readCompleteJourney(flags.dataset, flags.level as CompleteJourneyLevel);
      const result = evaluateCategoryRanking({ lines, cutoff, until, k, level: flags.level, options });
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}
