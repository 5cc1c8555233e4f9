// `npm run bench -- <name> [...]`: runs tests/bench/<name>.bench.ts (all of them with no name).
// Benchmarks print figures and ratios against a baseline measured in the same run; they never assert time.
import { readdirSync } from "node:fs";
import path from "node:path";

const here = import.meta.dirname;
const available = readdirSync(here)
  .filter((file) => file.endsWith(".bench.ts"))
  .map((file) => file.replace(/\.bench\.ts$/, ""))
  .sort();
const [name, ...args] = process.argv.slice(2);
const selected = name ? [name] : available;

for (const bench of selected) {
  if (!available.includes(bench)) {
    console.error(`Unknown benchmark "${bench}". Available: ${available.join(", ")}`);
    process.exit(2);
  }
  console.log(`\n== bench: ${bench} ==`);
  const module = (await import(path.join(here, `${bench}.bench.ts`))) as { default: (args: string[]) => Promise<void> };
  await module.default(args);
}
