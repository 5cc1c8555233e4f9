// The demo retailer's catalog: a small category tree (parents such as apparel → heels), products with
// list prices spread across each category's price range, some on sale, a few out of stock, and the
// complementary category pairs the generated customers follow. Deterministic from the seed; no I/O.

import { Random } from "./random.ts";
import type { WireProduct } from "./wire.ts";

export interface SeedCategory {
  id: string;
  name: string;
  parentId: string | null;
}

interface LeafSpec {
  id: string;
  name: string;
  parentId: string;
  /** Typical list-price range in USD; products are spread log-uniformly across it. */
  priceRange: [number, number];
  adjectives: string[];
  nouns: string[];
}

const parents: SeedCategory[] = [
  { id: "apparel", name: "Apparel", parentId: null },
  { id: "accessories", name: "Accessories", parentId: null },
  { id: "beauty", name: "Beauty", parentId: null },
  { id: "home", name: "Home", parentId: null },
  { id: "pantry", name: "Pantry", parentId: null },
];

const leaves: LeafSpec[] = [
  leaf("dresses", "Dresses", "apparel", [39, 240], ["Wrap", "Slip", "Midi", "Linen", "Shirt", "Maxi"], ["Dress"]),
  leaf(
    "tops",
    "Tops",
    "apparel",
    [15, 90],
    ["Cotton", "Silk", "Ribbed", "Oversized", "Striped"],
    ["Tee", "Blouse", "Tank"],
  ),
  leaf(
    "denim",
    "Denim",
    "apparel",
    [35, 180],
    ["Straight", "Wide-Leg", "Slim", "Vintage", "High-Rise"],
    ["Jeans", "Denim Jacket"],
  ),
  leaf(
    "heels",
    "Heels",
    "apparel",
    [45, 320],
    ["Satin", "Suede", "Patent", "Block", "Kitten"],
    ["Pumps", "Slingbacks", "Mules"],
  ),
  leaf(
    "sneakers",
    "Sneakers",
    "apparel",
    [40, 200],
    ["Court", "Retro", "Knit", "Canvas", "Trail"],
    ["Sneakers", "Runners"],
  ),
  leaf(
    "jewellery",
    "Jewellery",
    "accessories",
    [18, 400],
    ["Gold", "Pearl", "Silver", "Hoop", "Charm"],
    ["Earrings", "Necklace", "Bracelet"],
  ),
  leaf(
    "handbags",
    "Handbags",
    "accessories",
    [30, 450],
    ["Leather", "Woven", "Quilted", "Mini", "Canvas"],
    ["Tote", "Crossbody", "Clutch"],
  ),
  leaf(
    "skincare",
    "Skincare",
    "beauty",
    [9, 120],
    ["Hydrating", "Gentle", "Vitamin C", "Overnight", "Mineral"],
    ["Serum", "Cleanser", "Moisturiser"],
  ),
  leaf(
    "makeup",
    "Makeup",
    "beauty",
    [8, 65],
    ["Matte", "Sheer", "Long-Wear", "Dewy", "Velvet"],
    ["Lipstick", "Mascara", "Foundation"],
  ),
  leaf(
    "fragrance",
    "Fragrance",
    "beauty",
    [30, 260],
    ["Amber", "Citrus", "Vetiver", "Rose", "Oud"],
    ["Eau de Parfum", "Eau de Toilette"],
  ),
  leaf(
    "bedding",
    "Bedding",
    "home",
    [25, 320],
    ["Percale", "Linen", "Sateen", "Waffle", "Washed"],
    ["Duvet Cover", "Sheet Set", "Throw"],
  ),
  leaf(
    "candles",
    "Candles",
    "home",
    [12, 75],
    ["Fig", "Cedar", "Sea Salt", "Tobacco", "Linen"],
    ["Candle", "Diffuser"],
  ),
  leaf(
    "kitchen",
    "Kitchen",
    "home",
    [10, 260],
    ["Enamel", "Copper", "Stoneware", "Cast-Iron", "Glass"],
    ["Pan", "Mug Set", "Bowl", "Knife"],
  ),
  leaf(
    "coffee",
    "Coffee",
    "pantry",
    [9, 32],
    ["Ethiopia", "Colombia", "House", "Espresso", "Decaf"],
    ["Whole Bean", "Ground Coffee"],
  ),
  leaf(
    "tea",
    "Tea",
    "pantry",
    [6, 28],
    ["Earl Grey", "Sencha", "Chai", "Chamomile", "Assam"],
    ["Loose Leaf", "Tea Bags"],
  ),
];

/** "After buying A, customers who have this pair tend to buy B next." The population-level truth. */
export const complementaryPairs: ReadonlyArray<readonly [string, string]> = [
  ["heels", "jewellery"],
  ["dresses", "heels"],
  ["denim", "tops"],
  ["sneakers", "denim"],
  ["skincare", "makeup"],
  ["fragrance", "skincare"],
  ["bedding", "candles"],
  ["coffee", "kitchen"],
  ["tea", "candles"],
  ["handbags", "jewellery"],
];

export const leafCategoryIds: readonly string[] = leaves.map((spec) => spec.id);

export interface CatalogOptions {
  seed: number;
  baseUrl: string;
  productsPerCategory: number;
  /** Share of products currently on sale. */
  saleShare: number;
  outOfStockShare: number;
}

export interface Catalog {
  categories: SeedCategory[];
  products: WireProduct[];
  /** Products of each leaf category sorted by list price, cheapest first: price bands are quantiles of this. */
  productsByCategory: Map<string, WireProduct[]>;
}

export function generateCatalog(options: CatalogOptions): Catalog {
  const categories: SeedCategory[] = [
    ...parents,
    ...leaves.map((spec) => ({ id: spec.id, name: spec.name, parentId: spec.parentId })),
  ];
  const products: WireProduct[] = [];
  const productsByCategory = new Map<string, WireProduct[]>();
  for (const spec of leaves) {
    const random = Random.derive(options.seed, `catalog:${spec.id}`, 0);
    const [low, high] = spec.priceRange;
    const inCategory: WireProduct[] = [];
    for (let i = 0; i < options.productsPerCategory; i++) {
      // Evenly spaced in log-price with a little noise, so every band has products.
      const position = (i + random.between(0.1, 0.9)) / options.productsPerCategory;
      const listPrice = roundPrice(low * (high / low) ** position);
      const onSale = random.chance(options.saleShare);
      const id = `${spec.id}-${String(i + 1).padStart(3, "0")}`;
      inCategory.push({
        id,
        title: `${random.pick(spec.adjectives)} ${random.pick(spec.nouns)}`,
        categoryId: spec.id,
        categoryName: spec.name,
        parentCategoryId: spec.parentId,
        url: `${options.baseUrl}/demo/products/${id}`,
        imageUrl: `${options.baseUrl}/demo/images/${id}.svg`,
        listPrice,
        salePrice: onSale ? roundPrice(listPrice * random.between(0.6, 0.85)) : null,
        inStock: !random.chance(options.outOfStockShare),
      });
    }
    disambiguateTitles(inCategory);
    productsByCategory.set(spec.id, inCategory);
    products.push(...inCategory);
  }
  return { categories, products, productsByCategory };
}

/** Prices end in .99 above $10 and in .49/.99 below, like a real shelf. */
export function roundPrice(price: number): number {
  if (price >= 10) return Math.max(1, Math.round(price)) - 0.01;
  return Math.round(price * 2) / 2 - 0.01;
}

function disambiguateTitles(products: WireProduct[]): void {
  const seen = new Map<string, number>();
  for (const product of products) {
    const count = (seen.get(product.title) ?? 0) + 1;
    seen.set(product.title, count);
    if (count > 1) product.title = `${product.title} No. ${count}`;
  }
}

function leaf(
  id: string,
  name: string,
  parentId: string,
  priceRange: [number, number],
  adjectives: string[],
  nouns: string[],
): LeafSpec {
  return { id, name, parentId, priceRange, adjectives, nouns };
}
