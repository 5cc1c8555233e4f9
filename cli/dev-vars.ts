// Settings of the local deployment that `npm start` writes to .dev.vars (dotenv syntax), read by the
// commands that talk to it, so they work against a local run with no flags.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { IngestClient, type IngestClientOptions } from "./import/client.ts";
import { workerUrlProblem } from "./options.ts";

/**
 * Every KEY=value of a .dev.vars text, read as wrangler reads it (dotenv syntax): comments, an optional
 * `export`, single or double quotes, and an inline `# comment` after an unquoted value.
 */
export function parseDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/);
    if (!match?.[1]) continue;
    const value = match[2] ?? "";
    const quoted = value.match(/^(["'])(.*)\1$/);
    vars[match[1]] = quoted ? (quoted[2] ?? "") : value.replace(/\s+#.*$/, "");
  }
  return vars;
}

/**
 * The local deployment's .dev.vars: in the working folder or the nearest folder above it that has one
 * (`npm start` writes it at the repository's root, and a command may run in a subfolder).
 */
export function localDevVarsFile(from = process.cwd()): string | undefined {
  for (let folder = path.resolve(from); ; folder = path.dirname(folder)) {
    const file = path.join(folder, ".dev.vars");
    if (existsSync(file)) return file;
    if (path.dirname(folder) === folder) return undefined;
  }
}

/** KEY=value from a .dev.vars file (the local one by default); undefined when the file or the key is absent. */
export async function devVar(key: string, file = localDevVarsFile()): Promise<string | undefined> {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  return parseDevVars(text)[key];
}

/** The worker a command talks to by default: $PATRON_URL, else the local one on $PORT (8787), as `npm start` runs it. */
export const defaultWorkerUrl = () => process.env.PATRON_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8787}`;

/** Why $PATRON_URL cannot name a worker, when a command would use it (no --url) and it cannot. */
export function patronUrlProblem(flag: string | undefined): string | undefined {
  const named = process.env.PATRON_URL;
  if (flag !== undefined || named === undefined) return undefined;
  const problem = workerUrlProblem(named);
  return problem ? `$PATRON_URL ${problem}` : undefined;
}

/** A key and where it was found, so a refusal can name the place to fix. */
export interface FoundKey {
  key: string;
  from: "--key" | `$${KeyVariable}` | ".dev.vars";
}

type KeyVariable = "PATRON_API_KEY" | "PATRON_ADMIN_KEY";

/**
 * A key: --key, then $`variable`, then the local deployment's .dev.vars, which is read only when the
 * command talks to the local worker (`local`): its key is never sent anywhere else.
 */
export async function keyFrom(
  variable: KeyVariable,
  flag: string | undefined,
  local = true,
): Promise<FoundKey | undefined> {
  if (flag !== undefined) return { key: flag, from: "--key" };
  const set = process.env[variable];
  if (set !== undefined) return { key: set, from: `$${variable}` };
  const found = local ? await devVar(variable) : undefined;
  return found === undefined ? undefined : { key: found, from: ".dev.vars" };
}

/** The admin key, as keyFrom finds it. */
export const adminKeyFrom = (flag: string | undefined, local = true) => keyFrom("PATRON_ADMIN_KEY", flag, local);

const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * The command talks to a worker on this machine: no --url and no $PATRON_URL (the local one on $PORT,
 * defaultWorkerUrl), or one of them naming a loopback address (`npm start` on another port).
 */
export function talksToLocalWorker(url: string | undefined): boolean {
  const named = url ?? process.env.PATRON_URL;
  if (named === undefined) return true;
  try {
    return loopbackHosts.has(new URL(named).hostname);
  } catch {
    return false;
  }
}

/**
 * A client for the admin routes: the worker from `url` or the default, the key from adminKeyFrom.
 * `fail` reports a missing key (a command's own error, which exits).
 */
export async function adminClient(
  options: { url?: string; key?: string },
  fail: (message: string) => never,
  settings: Omit<IngestClientOptions, "url" | "apiKey" | "keyFrom"> = {},
): Promise<IngestClient> {
  const urlProblem = patronUrlProblem(options.url);
  if (urlProblem) fail(urlProblem);
  const local = talksToLocalWorker(options.url);
  const found = await adminKeyFrom(options.key, local);
  if (!found)
    fail(`--key is required (or PATRON_ADMIN_KEY${local ? ", or a .dev.vars here or in a folder above" : ""})`);
  return new IngestClient({
    url: options.url ?? defaultWorkerUrl(),
    apiKey: found.key,
    keyFrom: found.from,
    unreachableHint: local
      ? "Is the worker running there? Pass --url, or set PATRON_URL (or PORT for a local one)."
      : "Is the worker running there?",
    ...settings,
  });
}
