// The demo-data generator: deterministic, wire-format valid, and its ground truth visible in the data.
import { describe, expect, it } from "vitest";
import {
  demoShoppers,
  type GeneratedCustomer,
  generateCustomers,
  generateProducts,
  householdOf,
} from "../../db/seed/generate.ts";
import { checkWireOrder, identifierValue } from "../../db/seed/wire.ts";
import { normalizeIdentifier } from "../../worker/core/identity/normalize.ts";
import { customerProfile } from "../../worker/core/profile/customer-profile.ts";
import { fitPopulationModels, summaryRowFromOrders } from "../../worker/core/profile/population-models.ts";

const today = "2026-06-01";
const population = [...generateCustomers({ seed: 7, customers: 1500, today })];
const regular = population.filter((customer) => customer.truth.key.startsWith("c-"));

function discountedUnitShare(customers: GeneratedCustomer[]): number {
  let discounted = 0;
  let units = 0;
  for (const { orders } of customers)
    for (const order of orders)
      for (const line of order.lines) {
        units += line.quantity;
        if (line.unitPrice < line.listPrice) discounted += line.quantity;
      }
  return discounted / units;
}

describe("generateCustomers", () => {
  it("is deterministic: the same seed gives the same customers and orders", () => {
    const again = [...generateCustomers({ seed: 7, customers: 1500, today })];
    expect(JSON.stringify(again)).toBe(JSON.stringify(population));
    const other = [...generateCustomers({ seed: 8, customers: 50, today })];
    expect(JSON.stringify(other.slice(5, 10))).not.toBe(JSON.stringify(population.slice(5, 10)));
  });

  it("gives customer i the same history whatever the dataset size", () => {
    const small = [...generateCustomers({ seed: 7, customers: 20, today })];
    expect(JSON.stringify(small)).toBe(JSON.stringify(population.slice(0, small.length)));
  });

  it("produces valid wire-format orders with unique ids, placed before today", () => {
    const ids = new Set<string>();
    const productIds = new Set(generateProducts().map((product) => product.id));
    const problems: string[] = [];
    for (const { orders } of population)
      for (const order of orders) {
        const issues = checkWireOrder(order).map((issue) => `${order.id} ${issue.path.join(".")}: ${issue.message}`);
        problems.push(...issues);
        if (order.placedAt >= `${today}T00:00:00Z`) problems.push(`${order.id} placed on or after today`);
        if (order.currency !== "USD") problems.push(`${order.id} currency`);
        if ((order.storeId === null) !== (order.channel !== "store")) problems.push(`${order.id} storeId`);
        for (const line of order.lines)
          if (!productIds.has(line.productId)) problems.push(`${order.id} unknown product`);
        ids.add(order.id);
      }
    expect(problems).toEqual([]);
    const total = population.reduce((sum, customer) => sum + customer.orders.length, 0);
    expect(ids.size).toBe(total);
    expect(total).toBeGreaterThan(10_000);
  });

  it("makes deal seekers buy discounted units far more often than full-price shoppers", () => {
    const dealSeekers = regular.filter((customer) => customer.truth.discountHabit === "deal_seeker");
    const fullPrice = regular.filter((customer) => customer.truth.discountHabit === "full_price");
    const mixed = regular.filter((customer) => customer.truth.discountHabit === "mixed");
    expect(discountedUnitShare(dealSeekers)).toBeGreaterThan(0.75);
    expect(discountedUnitShare(fullPrice)).toBe(0);
    expect(discountedUnitShare(mixed)).toBeGreaterThan(0.15);
    expect(discountedUnitShare(mixed)).toBeLessThan(0.6);
  });

  it("shows lift for each customer's complementary pairs: B follows A more often than B's base rate", () => {
    let followedByB = 0;
    let afterA = 0;
    let ordersWithB = 0;
    let orders = 0;
    for (const customer of regular)
      for (const [from, to] of customer.truth.complementaryPairs) {
        const categories = customer.orders.map((order) => new Set(order.lines.map((line) => line.categoryId)));
        for (let i = 1; i < categories.length; i++) {
          orders++;
          if (categories[i]?.has(to)) ordersWithB++;
          if (categories[i - 1]?.has(from)) {
            afterA++;
            if (categories[i]?.has(to)) followedByB++;
          }
        }
      }
    const lift = followedByB / afterA / (ordersWithB / orders);
    expect(afterA).toBeGreaterThan(1000);
    expect(lift).toBeGreaterThan(1.5);
  });

  it("spaces each customer's orders at their own mean interval", () => {
    const ratios: number[] = [];
    for (const { truth, orders } of regular) {
      if (orders.length < 8) continue;
      const first = Date.parse(orders[0]!.placedAt);
      const last = Date.parse(orders.at(-1)!.placedAt);
      const observedDays = (last - first) / 86_400_000 / (orders.length - 1);
      ratios.push(observedDays / truth.meanIntervalDays);
    }
    ratios.sort((a, b) => a - b);
    expect(ratios.length).toBeGreaterThan(300);
    expect(ratios[Math.floor(ratios.length / 2)]).toBeGreaterThan(0.9);
    expect(ratios[Math.floor(ratios.length / 2)]).toBeLessThan(1.1);
    expect(ratios[Math.floor(ratios.length * 0.9)]).toBeLessThan(1.35);
  });

  it("stops churned customers before their churn date and starts new ones recently", () => {
    const churned = regular.filter((customer) => customer.truth.churnedAt !== null);
    const fresh = regular.filter((customer) => customer.truth.isNew);
    expect(churned.length).toBeGreaterThan(100);
    expect(fresh.length).toBeGreaterThan(50);
    for (const { truth, orders } of churned) expect(orders.at(-1)!.placedAt < truth.churnedAt!).toBe(true);
    for (const { orders } of fresh)
      expect(Date.parse(today) - Date.parse(orders[0]!.placedAt)).toBeLessThan(31 * 86_400_000);
  });

  it("keeps price bands apart: premium shoppers pay more than budget shoppers in the same category", () => {
    const meanListPrice = (band: string) => {
      const prices = regular
        .filter((customer) => customer.truth.priceBand === band)
        .flatMap((customer) => customer.orders.flatMap((order) => order.lines))
        .filter((line) => line.categoryId === "heels")
        .map((line) => line.listPrice);
      return prices.reduce((sum, price) => sum + price, 0) / prices.length;
    };
    expect(meanListPrice("premium")).toBeGreaterThan(2 * meanListPrice("budget"));
  });

  it("splits identities across channels: web orders carry the account, store orders loyalty, card or receipt", () => {
    let cardOnly = 0;
    let junk = 0;
    const misplaced: string[] = [];
    for (const { orders } of regular)
      for (const order of orders) {
        const kinds = Object.keys(order.identifiers);
        if (order.channel === "store") {
          if (kinds.includes("account")) misplaced.push(order.id);
          if (kinds.length === 1 && kinds[0] === "card") cardOnly++;
        } else if (!kinds.includes("account")) misplaced.push(order.id);
        for (const [kind, value] of Object.entries(order.identifiers))
          if (!normalizeIdentifier(kind as "email", identifierValue(value)).ok) junk++;
      }
    expect(misplaced).toEqual([]);
    expect(cardOnly).toBeGreaterThan(100);
    expect(junk).toBeGreaterThan(10);
  });

  it("shares one card or phone among household members, each with their own loyalty number", () => {
    const households = new Map<string, GeneratedCustomer[]>();
    for (const customer of regular) {
      const household = customer.truth.household;
      if (household) households.set(household.id, [...(households.get(household.id) ?? []), customer]);
    }
    expect(households.size).toBeGreaterThan(5);
    let sharedOnOrders = 0;
    for (const members of households.values()) {
      expect(members.length).toBe(members[0]!.truth.household!.members);
      const loyalty = new Set(members.map((member) => member.truth.identifiers.loyalty));
      expect(loyalty.size).toBe(members.length);
      expect(loyalty.has(null)).toBe(false);
      const value = members[0]!.truth.household!.value;
      const kind = members[0]!.truth.household!.shares;
      const usedBy = members.filter((member) =>
        member.orders.some((order) => {
          const identifier = order.identifiers[kind];
          return identifier !== undefined && identifierValue(identifier) === value;
        }),
      );
      if (usedBy.length >= 2) sharedOnOrders++;
    }
    expect(sharedOnOrders).toBeGreaterThan(households.size / 2);
    expect(householdOf(7, 0)).toEqual(householdOf(7, 0));
  });
});

describe("demo personas", () => {
  const byId = new Map(population.map((customer) => [customer.truth.key, customer]));
  const categoriesOf = (id: string) =>
    new Set(byId.get(id)!.orders.flatMap((order) => order.lines.map((line) => line.categoryId)));

  it("are all present, seed-independent, with stable accounts", () => {
    for (const shopper of demoShoppers) expect(byId.has(shopper.id)).toBe(true);
    const other = [...generateCustomers({ seed: 99, customers: 0, today })];
    expect(JSON.stringify(other)).toBe(JSON.stringify(population.slice(0, demoShoppers.length)));
    expect(demoShoppers.map((shopper) => shopper.accountId)).toEqual([
      "demo-full-price",
      "demo-store-loyal",
      "demo-fading",
      "demo-new",
      null,
    ]);
  });

  it("buys full price online, in distinct categories from the store shopper", () => {
    const fullPrice = byId.get("demo-full-price")!;
    expect(discountedUnitShare([fullPrice])).toBe(0);
    expect(fullPrice.orders.every((order) => order.channel === "web")).toBe(true);
    const overlap = [...categoriesOf("demo-full-price")].filter((id) => categoriesOf("demo-store-loyal").has(id));
    expect(overlap).toEqual([]);
    expect([...categoriesOf("demo-fading")].some((id) => categoriesOf("demo-new").has(id))).toBe(false);
  });

  it("links the store-loyal login to the loyalty card only through the e-receipt email", () => {
    const { orders, truth } = byId.get("demo-store-loyal")!;
    const store = orders.filter((order) => order.channel === "store");
    const web = orders.filter((order) => order.channel === "web");
    expect(store.length).toBeGreaterThan(10);
    expect(web).toHaveLength(1);
    expect(web[0]!.identifiers).toEqual({
      account: "demo-store-loyal",
      email: { value: truth.identifiers.email, verified: true },
    });
    expect(store.filter((order) => "email" in order.identifiers)).toHaveLength(1);
    for (const order of store) expect(order.identifiers.loyalty).toBe(truth.identifiers.loyalty);
  });

  it("has a fading regular, silent for about twice their interval, whom the product's own models call fading", () => {
    const fading = byId.get("demo-fading")!;
    const daysSinceLast = (Date.parse(today) - Date.parse(fading.orders.at(-1)!.placedAt)) / 86_400_000;
    expect(fading.orders.length).toBeGreaterThan(15);
    expect(daysSinceLast).toBeGreaterThan(1.5 * fading.truth.meanIntervalDays);
    expect(daysSinceLast).toBeLessThan(3 * fading.truth.meanIntervalDays);
    // The models fitted on the seeded base, as the nightly job fits them: past their rhythm, not yet lapsed.
    const now = new Date(`${today}T00:00:00Z`);
    const buyers = population.filter((customer) => customer.orders.length > 0);
    const rowOf = (customer: (typeof buyers)[number], index: number) =>
      summaryRowFromOrders(
        `${customer.truth.key}-${index}`,
        customer.orders.map((order) => ({
          placedAt: order.placedAt,
          total: order.lines.reduce((sum, line) => sum + line.quantity * line.unitPrice, 0),
        })),
      );
    const models = fitPopulationModels(buyers.map(rowOf), now);
    const summary = { ...rowOf(fading, 0), webOrders: 0, storeOrders: 0, appOrders: 0, phoneOrders: 0 };
    expect(customerProfile({ summary, categories: [], models, now }).lifecycle.stage).toBe("fading");
  });

  it("has a new shopper with one recent order, and an anonymous visitor with none", () => {
    const fresh = byId.get("demo-new")!;
    expect(fresh.orders).toHaveLength(1);
    expect(Date.parse(today) - Date.parse(fresh.orders[0]!.placedAt)).toBeLessThan(7 * 86_400_000);
    expect(byId.get("demo-anonymous")!.orders).toHaveLength(0);
  });
});

describe("generateProducts", () => {
  it("builds a catalog with demo urls, some sale prices and some out of stock", () => {
    const products = generateProducts({ baseUrl: "https://shop.test" });
    expect(new Set(products.map((product) => product.categoryId)).size).toBeGreaterThanOrEqual(12);
    expect(products[0]!.url).toBe(`https://shop.test/demo/products/${products[0]!.id}`);
    expect(products[0]!.imageUrl).toBe(`https://shop.test/demo/images/${products[0]!.id}.svg`);
    const onSale = products.filter((product) => product.salePrice !== null);
    expect(onSale.length / products.length).toBeGreaterThan(0.2);
    for (const product of onSale) expect(product.salePrice!).toBeLessThan(product.listPrice);
    expect(products.some((product) => !product.inStock)).toBe(true);
    expect(new Set(products.map((product) => product.id)).size).toBe(products.length);
  });
});
