// The Standard Webhooks secret form that TRANSITIONS_WEBHOOK_SECRET must have: `whsec_` and the padded
// base64 of 24 to 64 bytes, nothing around it.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isSigningSecret } from "../../../worker/core/webhooks/signing-secret.ts";

const secret = (bytes: number) => `whsec_${randomBytes(bytes).toString("base64")}`;

describe("isSigningSecret", () => {
  it("accepts whsec_ and the base64 of 24 to 64 bytes, padded or not needing padding", () => {
    for (const bytes of [24, 25, 26, 32, 33, 64]) expect(isSigningSecret(secret(bytes)), String(bytes)).toBe(true);
    expect(isSigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toBe(true);
  });

  it("refuses anything else", () => {
    const good = secret(32);
    for (const text of [
      "",
      "whsec_",
      good.slice("whsec_".length),
      `WHSEC_${good.slice(6)}`,
      ` ${good}`,
      `${good}\n`,
      good.replace(/=+$/, ""),
      `${good.slice(0, -4)}-_A=`,
      `whsec_${"A".repeat(43)}!`,
      `whsec_${"A".repeat(42)}===`,
      secret(23),
      secret(65),
    ])
      expect(isSigningSecret(text), JSON.stringify(text)).toBe(false);
  });
});
