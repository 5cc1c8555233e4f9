// One placement rule for the API and the widget (worker/core/placement.ts): the query schema refuses
// exactly the names the widget leaves out of its events, and the widget takes the rule from there rather
// than a copy of its own, with nothing else of the worker's in its bundle.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { maxPlacementLength, placementPattern } from "../../../worker/core/placement.ts";
import { recommendationsQuerySchema } from "../../../worker/recommendations/recommendations.schemas.ts";

const root = path.resolve(import.meta.dirname, "../../..");

const names = [
  "home",
  "buy-again",
  "shelf_2",
  "9lives",
  "a",
  "a".repeat(maxPlacementLength),
  "a".repeat(maxPlacementLength + 1),
  "",
  "Home",
  "-home",
  "_home",
  "home page",
  " home",
  "home\n",
  "café",
  "home/x",
];

describe("the placement rule", () => {
  it("is the query schema's: a name it takes the widget keeps in its events, one it refuses the widget leaves out", () => {
    const verdicts = names.map((name) => ({
      name,
      api: recommendationsQuerySchema.safeParse({ placement: name }).success,
      widget: placementPattern.test(name),
    }));
    expect(verdicts.filter((verdict) => verdict.api !== verdict.widget)).toEqual([]);
    expect(verdicts.filter((verdict) => verdict.api).map((verdict) => verdict.name)).toEqual(names.slice(0, 6));
  });

  it("refuses a name that is too long with the one message that says so", () => {
    const result = recommendationsQuerySchema.safeParse({ placement: "a".repeat(maxPlacementLength + 1) });
    expect(result.error?.issues.map((issue) => issue.message)).toEqual([
      `placement must be at most ${maxPlacementLength} characters`,
    ]);
    const wrong = recommendationsQuerySchema.safeParse({ placement: "Home" });
    expect(wrong.error?.issues.map((issue) => issue.message)).toEqual([
      "placement must be lowercase letters, digits, - or _, starting with a letter or digit",
    ]);
  });

  it("is the widget's own, not a copy: shelf.tsx imports it and spells no pattern of its own", () => {
    const shelf = readFileSync(path.join(root, "widget/storefront/shelf.tsx"), "utf8");
    expect(shelf).toContain('import { placementPattern } from "../../worker/core/placement.ts";');
    expect(shelf).not.toMatch(/\/\^\[a-z/);
  });

  it("takes nothing else of the worker's into the widget's bundle", () => {
    const bundle = readFileSync(path.join(root, "dist/public/widget/v1.js"), "utf8");
    expect(bundle).toContain(placementPattern.source);
    // The schema's messages and zod stay in the worker.
    expect(bundle).not.toContain("placement must be");
    expect(bundle).not.toMatch(/safeParse|ZodError/);
  });
});
