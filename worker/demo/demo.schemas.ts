// Query shapes for the demo-only routes.
import * as z from "zod";

/**
 * The storefront accounts of the demo's seeded shoppers (db/seed/generate.ts `demoShoppers`; the
 * anonymous persona has none). /demo/token signs for these and nothing else.
 */
export const demoAccounts = ["demo-full-price", "demo-store-loyal", "demo-fading", "demo-new"] as const;

export const demoTokenQuerySchema = z.object({
  account: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .regex(/^[\w.@-]+$/, "Use letters, digits, '.', '@', '_' or '-'."),
});

export const demoTokenResponseSchema = z.object({
  data: z.object({ token: z.string(), account: z.string(), expiresAt: z.string() }),
});

export type DemoTokenResponse = z.infer<typeof demoTokenResponseSchema>;
