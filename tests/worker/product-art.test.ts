// The demo catalog's product pictures: every category gets its own drawing, every product its own
// colours, and each picture stays a small, inert SVG.
import { describe, expect, it } from "vitest";
import { leafCategoryIds } from "../../db/seed/catalog.ts";
import { generateProducts } from "../../db/seed/generate.ts";
import { productArt } from "../../worker/demo/product-art.ts";

const fills = (svg: string) => [...svg.matchAll(/fill="(hsl[^"]+)"/g)].map((match) => match[1]).join();
/** The shapes, colours taken out: what the category's drawing looks like. */
const shapes = (svg: string) => svg.replace(/<title>.*<\/title>/, "").replace(/hsl\([^)]*\)/g, "");

describe("product art", () => {
  const products = generateProducts();

  it("is small, inert SVG for every product of the demo catalog", () => {
    for (const product of products) {
      const svg = productArt(product);
      expect(svg, product.id).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*viewBox="0 0 400 400"/);
      expect(svg, product.id).not.toMatch(/<script|<foreignObject|<image|\bon[a-z]+=|href=|url\(|<style/i);
      expect(new TextEncoder().encode(svg).length, product.id).toBeLessThan(2048);
    }
  });

  it("draws each category differently, and the parcel for an unknown one", () => {
    const drawings = leafCategoryIds.map((categoryId) =>
      shapes(productArt({ id: `${categoryId}-x`, title: "Plain", categoryId })),
    );
    const parcel = shapes(productArt({ id: "x", title: "Plain", categoryId: "garden" }));
    expect(new Set([...drawings, parcel]).size).toBe(leafCategoryIds.length + 1);
  });

  it("colours products of one category differently, and one product the same every time", () => {
    const coffees = products.filter((product) => product.categoryId === "coffee");
    const colours = new Set(coffees.map((product) => fills(productArt(product))));
    expect(colours.size).toBe(coffees.length);
    const first = coffees[0]!;
    expect(productArt(first)).toBe(productArt({ ...first }));
  });

  it("draws a kitchen product after the object its title names", () => {
    const kitchen = (title: string) => shapes(productArt({ id: "kitchen-1", title, categoryId: "kitchen" }));
    const drawn = ["Copper Pan", "Glass Bowl", "Cast-Iron Knife", "Enamel Mug Set"].map(kitchen);
    expect(new Set(drawn).size).toBe(4);
  });

  it("escapes the title, its only text", () => {
    const svg = productArt({ id: "a", title: `<script>alert("x")</script> & co`, categoryId: "tea" });
    expect(svg).toContain("<title>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; co</title>");
    expect(svg).not.toContain("<script");
  });
});
