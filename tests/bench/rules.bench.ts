// `npm run bench -- rules [products=100000] [categories=20]`: what merchandiser rules cost a shelf.
// Times recommend() for one known shopper with the storefront's options (shelfOptions, an 8-item and a
// 16-item shelf) on a generated catalog, with no rule (the baseline, measured in the same run) and with
// each kind of rule live, and prints the median and the ratio to the baseline; and the first shelf
// after the catalog is reloaded (a new array, grouped by category again). Product boosts choose
// items deeper before they reorder them (itemDepthFor), which is where a rule costs anything.
// Never asserts time.
import { buildPopulation } from "../../worker/core/ranking/population.ts";
import { recommend } from "../../worker/core/ranking/recommend.ts";
import type { CategoryStat, Product } from "../../worker/core/ranking/types.ts";
import type { Rule } from "../../worker/core/rules/types.ts";
import { shelfOptions } from "../../worker/recommendations/shelf.ts";

const now = new Date("2026-06-01T00:00:00Z");
const daysAgo = (days: number) => new Date(now.getTime() - days * 86_400_000).toISOString();

function catalogOf(products: number, categories: number): Product[] {
  return Array.from({ length: products }, (_, n) => ({
    id: `p-${n}`,
    title: `Product ${n}`,
    categoryId: `c-${n % categories}`,
    url: `https://shop.test/p/${n}`,
    imageUrl: null,
    listPrice: 5 + ((n * 7919) % 200),
    salePrice: n % 9 === 0 ? 4 + ((n * 7919) % 150) : null,
    inStock: true,
    active: true,
  }));
}

function statOf(categoryId: string, orders: number): CategoryStat {
  return {
    categoryId,
    orders,
    purchaseDays: orders,
    units: orders,
    spend: orders * 20,
    firstPurchaseAt: daysAgo(30 + orders * 30),
    lastPurchaseAt: daysAgo(30),
    avgUnitPrice: 20,
    discountedUnits: 0,
    webUnits: orders,
    storeUnits: 0,
  };
}

export default async function rulesBench(args: string[]) {
  const products = Number(args[0] ?? 100_000);
  const categories = Number(args[1] ?? 20);
  const catalog = catalogOf(products, categories);
  // A population of 2,000 shoppers buying a few categories each, and one shopper who buys five.
  const shoppers = Array.from({ length: 2_000 }, (_, s) => ({
    categories: [0, 1, 2].map((k) => statOf(`c-${(s * 3 + k * 7) % categories}`, 1 + (s % 4))),
  }));
  const population = buildPopulation(shoppers, catalog, now);
  const categoryStats = [0, 1, 2, 3, 4].map((c) => statOf(`c-${c}`, 6 - c));
  const summary = {
    orders: 12,
    purchaseDays: 12,
    firstOrderAt: daysAgo(400),
    lastOrderAt: daysAgo(30),
    spend: 400,
    webOrders: 12,
    storeOrders: 0,
    appOrders: 0,
    phoneOrders: 0,
    units: 20,
    discountedUnits: 2,
  };
  const rule = (fields: Partial<Rule> & Pick<Rule, "action" | "targetType" | "targetId">): Rule => ({
    id: "r",
    name: "r",
    enabled: true,
    ...fields,
  });
  const target = "p-1003";
  const cases: [string, Rule[]][] = [
    ["no rule (baseline)", []],
    ["category exclude", [rule({ action: "exclude", targetType: "category", targetId: "c-0" })]],
    ["category boost 1", [rule({ action: "boost", targetType: "category", targetId: "c-9", strength: 1 })]],
    ["product pin", [rule({ action: "pin", targetType: "product", targetId: target, slot: 1 })]],
    ["product bury 1", [rule({ action: "bury", targetType: "product", targetId: target, strength: 1 })]],
    ["product boost 1", [rule({ action: "boost", targetType: "product", targetId: target, strength: 1 })]],
    ["product boost 9", [rule({ action: "boost", targetType: "product", targetId: target, strength: 9 })]],
  ];
  console.log(
    `${products.toLocaleString("en")} products in ${categories} categories; one known shopper; median of 21 runs`,
  );
  for (const limit of [8, 16]) {
    const options = shelfOptions({ limit, categories: 4 }, 0);
    const time = (rules: Rule[], reloaded = false) => {
      const runs: number[] = [];
      for (let i = 0; i < 21; i++) {
        // The worker keeps one catalog array per isolate for a while, and the core remembers its grouping
        // by category; `reloaded` times the first shelf after a reload (a new array), which groups it again.
        const products = reloaded ? [...catalog] : catalog;
        const started = performance.now();
        const shelf = recommend(
          {
            customerId: "x",
            summary,
            categoryStats,
            population,
            catalog: products,
            rules,
            segment: { stage: "active" },
            now,
          },
          options,
        );
        runs.push(performance.now() - started);
        if (shelf.items.length === 0) throw new Error("empty shelf");
      }
      return runs.sort((a, b) => a - b)[10] as number;
    };
    time([]); // warm-up
    const baseline = time([]);
    console.log(`\nlimit=${limit}`);
    const line = (label: string, ms: number) =>
      console.log(`  ${label.padEnd(38)} ${ms.toFixed(1).padStart(6)} ms   ${(ms / baseline).toFixed(2)}× baseline`);
    for (const [label, rules] of cases) line(label, rules.length === 0 ? baseline : time(rules));
    line("no rule, first after a catalog reload", time([], true));
  }
}
