// The recommendation id format on its own: what it lists, what its signature binds, and what it refuses.
import { describe, expect, it } from "vitest";
import {
  accountSubject,
  anonymousSubject,
  customerSubject,
  maxRecommendationIdLength,
  maxTaggedItems,
  newRecommendationId,
  parseRecommendationId,
  signerOf,
  wasServed,
} from "../../worker/recommendations/recommendation-id.ts";

const secret = "id-secret";
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const items = ["sku-1", "sku-2", "sku-3"];
const issuedAt = new Date("2026-11-30T12:00:00Z");
const issue = (subject = customerSubject("c_1"), itemIds = items, key = secret) =>
  newRecommendationId({ arm: "holdout", subject, itemIds, issuedAt }, key);

describe("recommendation ids", () => {
  it("carry the arm, issue time and one tag per served item", async () => {
    const id = await issue();
    expect(id).toMatch(/^rec_[A-Za-z0-9_-]{8}\.h\.[0-9a-z]+\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{11}$/);
    const parsed = parseRecommendationId(id);
    expect(parsed).toMatchObject({ arm: "holdout", issuedAt });
    expect(parsed?.tags).toHaveLength(3);
    for (const item of items) expect(await wasServed(parsed!, secret, item)).toBe(true);
    const others = Array.from({ length: 200 }, (_, i) => `other-${i}`);
    const passing = (await Promise.all(others.map((item) => wasServed(parsed!, secret, item)))).filter(Boolean);
    // 12-bit tags, 3 items: about 3 in 4096 pass; 200 tries letting more than 5 through would be a broken tag.
    expect(passing.length).toBeLessThanOrEqual(5);
  });

  it("verify only for the subject they were served to, and with the right secret", async () => {
    const parsed = parseRecommendationId(await issue())!;
    expect(await signerOf(parsed, [customerSubject("c_1")], [secret])).toBe(secret);
    expect(await signerOf(parsed, [customerSubject("c_2"), anonymousSubject], [secret])).toBeNull();
    expect(await signerOf(parsed, [accountSubject("c_1")], [secret])).toBeNull();
    expect(await signerOf(parsed, [customerSubject("c_1")], ["other-secret"])).toBeNull();
    // A rotation: ids signed with the previous secret still verify while it is configured.
    expect(await signerOf(parsed, [customerSubject("c_1")], ["new-secret", secret])).toBe(secret);
  });

  it("refuse altered parts, non-canonical signatures and the old format", async () => {
    const id = await issue();
    const parsed = parseRecommendationId(id)!;
    const subjects = [customerSubject("c_1")];
    const [nonce, arm, at, tags, sig] = id.slice(4).split(".") as [string, string, string, string, string];
    const variants = [
      `rec_${nonce}.p.${at}.${tags}.${sig}`,
      `rec_${nonce}.${arm}.${(Number.parseInt(at, 36) + 86_400).toString(36)}.${tags}.${sig}`,
      `rec_${nonce}.${arm}.${at}.${tags}AA.${sig}`,
      `rec_${nonce}.${arm}.${at}.${tags.slice(2)}.${sig}`,
      // The last character carries 4 signature bits and 2 zero bits: setting those bits is another spelling.
      `rec_${nonce}.${arm}.${at}.${tags}.${sig.slice(0, 10)}${alphabet[alphabet.indexOf(sig[10] as string) | 1]}`,
    ];
    for (const variant of variants) {
      const altered = parseRecommendationId(variant);
      expect(altered, variant).not.toBeNull();
      expect(await signerOf(altered!, subjects, [secret]), variant).toBeNull();
    }
    expect(await signerOf(parsed, subjects, [secret])).toBe(secret);
    expect(parseRecommendationId("rec_0123456789abcdef01234567.personalized.0123456789abcdef")).toBeNull();
    expect(parseRecommendationId(`${id}=`)).toBeNull();
    expect(parseRecommendationId("rec-unsigned")).toBeNull();
  });

  it("stay within the documented length at the largest shelf", async () => {
    const many = Array.from({ length: 60 }, (_, i) => `product-${i}`);
    const id = await issue(anonymousSubject, many);
    expect(parseRecommendationId(id)?.tags).toHaveLength(maxTaggedItems);
    expect(id.length).toBeLessThanOrEqual(maxRecommendationIdLength);
  });
});
