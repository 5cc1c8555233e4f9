// The `patron` command: a thin Node shell over worker/core and the HTTP API.
import { readFileSync } from "node:fs";
import { Command } from "commander";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command()
  .name("patron")
  .description("Patron: cross-channel customer models and recommendations.")
  .version(version, "-V, --version", "print the version of Patron")
  .showHelpAfterError();

// Each command lives in cli/commands/<name>.ts and registers itself here.
const commands: Array<() => Promise<{ register: (program: Command) => void }>> = [
  () => import("./commands/backfill.ts"),
  () => import("./commands/evaluate.ts"),
  () => import("./commands/fit.ts"),
  () => import("./commands/import.ts"),
  () => import("./commands/seed.ts"),
  () => import("./commands/shards.ts"),
  () => import("./commands/token.ts"),
];
for (const load of commands) (await load()).register(program);

// Output piped into a command that stops reading early (`patron shards status | head -3`): stop
// quietly, as Unix tools do, instead of an unhandled EPIPE and its stack.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(0);
});

await program.parseAsync(process.argv);
