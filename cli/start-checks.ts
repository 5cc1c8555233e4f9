// What `npm start` checks of a local store against .dev.vars before it serves it: plain functions of
// what the store holds and the settings, so they are tested without starting anything.

/**
 * Why a store whose customers are all in `shardsHoldingAll` customer shards must not be served with
 * .dev.vars' `shardCount` (unset, or 0: D1 alone), or null. Served from D1, its customers would not be
 * found, and the demo would be seeded again beside them. A store going back to D1 on purpose keeps D1's
 * own customers (shardsHoldingAll is then null), and is let through.
 */
export function shardsLeftBehind(
  shardsHoldingAll: number | null,
  shardCount: string | undefined,
  stateDir: string,
): string | null {
  if (shardsHoldingAll === null || Number(shardCount ?? 0) > 0) return null;
  return (
    `this local store (${stateDir}) keeps its customers in ${shardsHoldingAll} customer shards, but .dev.vars sets ${shardCount === undefined ? "no SHARD_COUNT" : `SHARD_COUNT=${shardCount}`}: ` +
    `served from D1 they would not be found, and the demo would be seeded again beside them. Set SHARD_COUNT=${shardsHoldingAll} in .dev.vars (as .dev.vars.example does), or start on another store: npm start -- --state .wrangler/d1`
  );
}

/**
 * The settings .dev.vars.example sets that .dev.vars lacks (a .dev.vars copied before they were added):
 * this run goes without them, on the worker's defaults.
 */
export function settingsMissing(devVars: Record<string, string>, example: Record<string, string>): string[] {
  return Object.keys(example).filter((name) => !(name in devVars));
}

/** Settings the `patron` commands read from the shell too, where setting them is no mistake. */
const readFromShellToo = new Set(["PATRON_API_KEY", "PATRON_ADMIN_KEY"]);

/**
 * The settings (those .dev.vars or .dev.vars.example name) that the shell sets to another value than
 * .dev.vars: npm start reads them from .dev.vars alone (PORT aside), so `SHARD_COUNT=0 npm start`
 * would run on the shards .dev.vars sets without a word. Names only: some are secrets.
 */
export function settingsIgnoredFromShell(
  shell: Record<string, string | undefined>,
  devVars: Record<string, string>,
  example: Record<string, string>,
): string[] {
  return [...new Set([...Object.keys(example), ...Object.keys(devVars)])].filter(
    (name) => !readFromShellToo.has(name) && shell[name] !== undefined && shell[name] !== devVars[name],
  );
}
