// Recommendation ids that carry their holdout arm under an HMAC, so an impression, click or order
// attributed to a recommendation cannot claim an arm it was not served in (lift stays honest).
// Format: rec_<24 hex>.<arm>.<16 hex signature>.

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function signingKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      encoder.encode(`recommendation-id:${secret}`),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    keys.set(secret, key);
  }
  return key;
}

async function signature(body: string, secret: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await signingKey(secret), encoder.encode(body));
  return [...new Uint8Array(mac).slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function newRecommendationId(arm: string, secret: string): Promise<string> {
  const body = `rec_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}.${arm}`;
  return `${body}.${await signature(body, secret)}`;
}

/** The arm a recommendation id was issued for, or null when the id is not one Patron signed. */
export async function armOfRecommendationId(id: string, secret: string): Promise<string | null> {
  const match = id.match(/^(rec_[0-9a-f]{24}\.([a-z]+))\.([0-9a-f]{16})$/);
  if (!match?.[1] || !match[2] || !match[3]) return null;
  const expected = await signature(match[1], secret);
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ match[3].charCodeAt(i);
  return diff === 0 ? match[2] : null;
}
