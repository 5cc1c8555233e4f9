// `patron token`: prints a shopper token (compact HS256 JWT, `sub` = storefront account id) for local
// testing and for checking a storefront's own signing. It signs with the worker's own
// signShopperToken, so what it prints is exactly what the recommendations route accepts. It is not
// how production tokens are made: the storefront's server signs them (docs/embedding.md).
import type { Command } from "commander";
import { trimPadding } from "../../worker/core/identity/normalize.ts";
import { defaultMaxTtlSeconds, parseMaxTtlSeconds, signShopperToken } from "../../worker/http/shopper-token.ts";
import { devVar } from "../dev-vars.ts";

interface TokenFlags {
  sub: string;
  ttl: string;
  secret?: string;
}

/** The secret `wrangler dev` uses when .dev.vars is copied from .dev.vars.example. */
const localDefaultSecret = "dev-shopper-secret";
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** An input problem the user can fix: reported on stderr with exit code 2, no stack trace. */
class TokenInputError extends Error {}

/** "30m", "1h", "2d", "90s" or plain seconds ("3600") → seconds; null for anything else, 0 included. */
export function parseTtl(text: string): number | null {
  const match = text.trim().match(/^(\d+)([smhd]?)$/);
  if (!match) return null;
  const seconds = Number(match[1]) * unitSeconds[match[2] || "s"]!;
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : null;
}

async function resolveSecret(flag: string | undefined): Promise<string> {
  // An empty --secret is most often an unset variable (`--secret "$SECRET"`): a token signed with the
  // local default instead would be refused by the deployment it was meant for.
  if (flag !== undefined && !flag) throw new TokenInputError("--secret is empty (an unset variable?)");
  if (flag) return flag;
  if (process.env.SHOPPER_TOKEN_SECRET) return process.env.SHOPPER_TOKEN_SECRET;
  const fromFile = await devVar("SHOPPER_TOKEN_SECRET");
  if (fromFile) return fromFile;
  process.stderr.write(
    `patron token: no --secret, SHOPPER_TOKEN_SECRET or .dev.vars here or above; signing with the local default "${localDefaultSecret}"\n`,
  );
  return localDefaultSecret;
}

/** The deployment's lifetime cap: $SHOPPER_TOKEN_MAX_TTL_SECONDS, then .dev.vars, then the worker's default. */
async function resolveMaxTtl(): Promise<number> {
  const setting = process.env.SHOPPER_TOKEN_MAX_TTL_SECONDS ?? (await devVar("SHOPPER_TOKEN_MAX_TTL_SECONDS"));
  const seconds = parseMaxTtlSeconds(setting);
  if (seconds === null)
    throw new TokenInputError(`SHOPPER_TOKEN_MAX_TTL_SECONDS must be a positive number of seconds, got "${setting}"`);
  return seconds;
}

export function register(program: Command) {
  program
    .command("token")
    .description("Print a shopper token (HS256 JWT) for a storefront account id.")
    .requiredOption("--sub <account id>", "the storefront account id the token is for")
    .option(
      "--ttl <duration>",
      "lifetime: 30m, 1h, 1d, or seconds, at most the deployment's SHOPPER_TOKEN_MAX_TTL_SECONDS (1d unless set)",
      "1h",
    )
    .option(
      "--secret <secret>",
      "signing secret (default: $SHOPPER_TOKEN_SECRET, then .dev.vars, then the local default)",
    )
    .action(async (flags: TokenFlags) => {
      try {
        const sub = trimPadding(flags.sub);
        if (!sub) throw new TokenInputError("--sub must not be empty");
        const ttlSeconds = parseTtl(flags.ttl);
        if (ttlSeconds === null)
          throw new TokenInputError(
            `--ttl must be a positive duration like 30m, 1h, 12h or a whole number of seconds, got "${flags.ttl}"`,
          );
        const maxTtl = await resolveMaxTtl();
        if (ttlSeconds > maxTtl)
          throw new TokenInputError(
            `--ttl ${flags.ttl} is longer than the worker accepts (SHOPPER_TOKEN_MAX_TTL_SECONDS = ${maxTtl} s${maxTtl === defaultMaxTtlSeconds ? ", the default" : ""})`,
          );
        const token = await signShopperToken(sub, await resolveSecret(flags.secret), ttlSeconds, new Date());
        process.stdout.write(`${token}\n`);
      } catch (error) {
        if (!(error instanceof TokenInputError)) throw error;
        process.stderr.write(`patron token: ${error.message}\n`);
        process.exitCode = 2;
      }
    });
}
