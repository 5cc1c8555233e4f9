// The widget's gzip budget as a test, so `npm test` (and CI) fails when the bundle outgrows it. It reads
// the bundle `pretest` built and measures it exactly as `npm run size` does; it builds nothing itself.
import { describe, expect, it } from "vitest";
import { budgetGzipBytes, measureWidgetBundle } from "../../widget/size-check.ts";

describe("storefront widget bundle", () => {
  it(`stays within the ${budgetGzipBytes}-byte gzip budget`, async () => {
    const size = await measureWidgetBundle();
    if (!size) throw new Error("dist/public/widget/v1.js is missing: run `npm run build` first.");
    expect(size.gzipBytes).toBeGreaterThan(0);
    expect(size.gzipBytes, `${size.minifiedBytes} bytes minified`).toBeLessThanOrEqual(budgetGzipBytes);
  });
});
