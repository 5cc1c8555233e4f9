// npm start's check of a local store against .dev.vars: a store whose customers are all in customer
// shards is not served from D1 alone, where they would not be found; a setting given in the shell, which
// npm start does not read, is named.
import { expect, it } from "vitest";
import { settingsIgnoredFromShell, settingsMissing, shardsLeftBehind } from "../../cli/start-checks.ts";
import { timeZoneProblem } from "../../worker/http/config.ts";

it("refuses to serve from D1 a store whose customers are all in shards, and says which count to set", () => {
  const unset = shardsLeftBehind(4, undefined, ".wrangler/state");
  expect(unset).toContain("keeps its customers in 4 customer shards, but .dev.vars sets no SHARD_COUNT");
  expect(unset).toContain("Set SHARD_COUNT=4 in .dev.vars");
  expect(shardsLeftBehind(4, "0", ".wrangler/state")).toContain(".dev.vars sets SHARD_COUNT=0:");
  // On shards (any count: the shards themselves refuse another count than theirs), or a store whose
  // customers are in D1 (one that never used shards, or went back to D1 keeping D1's customers): served.
  expect(shardsLeftBehind(4, "4", ".wrangler/state")).toBeNull();
  expect(shardsLeftBehind(4, "8", ".wrangler/state")).toBeNull();
  expect(shardsLeftBehind(null, "0", ".wrangler/state")).toBeNull();
  expect(shardsLeftBehind(null, undefined, ".wrangler/state")).toBeNull();
});

it("names the settings .dev.vars.example sets that an older .dev.vars lacks", () => {
  const example = { PATRON_API_KEY: "k", PATRON_DEMO: "on", SHARD_COUNT: "4" };
  expect(settingsMissing({ PATRON_API_KEY: "mine", PATRON_DEMO: "off" }, example)).toEqual(["SHARD_COUNT"]);
  expect(settingsMissing({ ...example, EXTRA: "1" }, example)).toEqual([]);
});

it("names the settings the shell sets otherwise than .dev.vars, which npm start does not read from it", () => {
  const example = { PATRON_API_KEY: "k", SHARD_COUNT: "4", HOLDOUT_SHARE: "0" };
  const devVars = { ...example, SHARD_COUNT: "0", RETAILER_TIME_ZONE: "America/New_York" };
  // `SHARD_COUNT=4 npm start` on a .dev.vars that says 0: the run would be on D1.
  expect(settingsIgnoredFromShell({ SHARD_COUNT: "4", PATH: "/usr/bin" }, devVars, example)).toEqual(["SHARD_COUNT"]);
  expect(settingsIgnoredFromShell({ RETAILER_TIME_ZONE: "UTC", HOLDOUT_SHARE: "0.1" }, devVars, example)).toEqual([
    "HOLDOUT_SHARE",
    "RETAILER_TIME_ZONE",
  ]);
  // The same value, a setting the patron commands read from the shell, or none: nothing to say.
  expect(settingsIgnoredFromShell({ SHARD_COUNT: "0", PATRON_API_KEY: "other" }, devVars, example)).toEqual([]);
  expect(settingsIgnoredFromShell({}, devVars, example)).toEqual([]);
});

it("names a RETAILER_TIME_ZONE the runtime does not know, which the worker would read as UTC", () => {
  expect(timeZoneProblem("America/New York")).toBe(
    'RETAILER_TIME_ZONE "America/New York" is not a time zone the runtime knows, so the worker would run on UTC: give an IANA name such as America/New_York or Europe/Berlin.',
  );
  for (const fine of [undefined, "", "UTC", "America/New_York", "Asia/Kolkata"])
    expect(timeZoneProblem(fine)).toBeNull();
});
