// Prints the closing line CI counts: "N passed, N failed[, N skipped]". A test that did not run
// because its module or suite failed (a beforeAll that threw, a file that failed to collect) counts
// as failed, not skipped; so does a module or suite error that no failed test accounts for (an
// afterAll that threw, a file that failed to import). Only tests skipped on purpose (`it.skip`,
// `it.todo`, `.only` elsewhere, `ctx.skip()`) count as skipped.
import type { Reporter, TestCase, TestModule, TestSuite } from "vitest/node";

type Container = TestModule | TestSuite;

/** The test's enclosing suites and module that carry errors of their own (hooks, collection). */
function brokenAncestors(test: TestCase): Container[] {
  const broken: Container[] = [];
  let parent: Container = test.parent;
  for (;;) {
    if (parent.errors().length > 0) broken.push(parent);
    if (parent.type === "module") return broken;
    parent = parent.parent;
  }
}

export default class CountReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>) {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const module of testModules) {
      const broken = [module, ...module.children.allSuites()].filter((container) => container.errors().length > 0);
      const accountedFor = new Set<Container>();
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        const brokenAbove = brokenAncestors(test);
        // Declared skipped at collection (it.skip, it.todo, describe.skip, filtered out by .only).
        const skippedOnPurpose = state === "skipped" && test.options.mode !== "run";
        if (state === "passed") {
          passed++;
        } else if (state === "failed" || state === "pending" || (brokenAbove.length > 0 && !skippedOnPurpose)) {
          // Failed, never finished, or skipped only because something above it failed.
          failed++;
          for (const container of brokenAbove) accountedFor.add(container);
        } else {
          skipped++;
        }
      }
      for (const container of broken) if (!accountedFor.has(container)) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
  }
}
