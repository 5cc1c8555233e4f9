// Prints the closing line CI counts: "N passed, N failed[, N skipped]". A test that did not run
// because its module or suite failed (a beforeAll that threw, a file that failed to collect) counts
// as failed, not skipped; so does a module or suite error that no failed test accounts for (an
// afterAll that threw, a file that failed to import). Only tests skipped on purpose (`it.skip`,
// `it.todo`, `.only` elsewhere, `ctx.skip()`) count as skipped.
//
// With PATRON_TEST_PROGRESS set to a file (tests/run.ts sets it), it also appends one JSON line per
// event there: the files the run will take, each finished test, each finished file with its counts
// and the end. tests/run.ts reads it to tell a run that stalled from a slow one.
import { appendFileSync } from "node:fs";
import type { Reporter, TestCase, TestModule, TestSpecification, TestSuite } from "vitest/node";
import { type Counts, type ProgressRecord, sumCounts } from "./run-progress.ts";

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

/** One file's tests counted as the closing line counts them. */
export function countModule(module: TestModule): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  const broken = [module, ...module.children.allSuites()].filter((container) => container.errors().length > 0);
  const accountedFor = new Set<Container>();
  for (const test of module.children.allTests()) {
    const state = test.result().state;
    const brokenAbove = brokenAncestors(test);
    // Declared skipped at collection (it.skip, it.todo, describe.skip, filtered out by .only).
    const skippedOnPurpose = state === "skipped" && test.options.mode !== "run";
    if (state === "passed") {
      counts.passed++;
    } else if (state === "failed" || state === "pending" || (brokenAbove.length > 0 && !skippedOnPurpose)) {
      // Failed, never finished, or skipped only because something above it failed.
      counts.failed++;
      for (const container of brokenAbove) accountedFor.add(container);
    } else {
      counts.skipped++;
    }
  }
  for (const container of broken) if (!accountedFor.has(container)) counts.failed++;
  return counts;
}

export function countLine({ passed, failed, skipped }: Counts): string {
  return `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
}

export default class CountReporter implements Reporter {
  readonly #progress = process.env.PATRON_TEST_PROGRESS;

  #record(record: ProgressRecord) {
    if (this.#progress) appendFileSync(this.#progress, `${JSON.stringify(record)}\n`);
  }

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>) {
    const files = specifications.map((spec) => ({ project: spec.project.name, file: spec.moduleId }));
    this.#record({ type: "files", files });
  }

  onTestModuleStart(module: TestModule) {
    this.#record({ type: "start", project: module.project.name, file: module.moduleId });
  }

  onTestCaseResult() {
    this.#record({ type: "case" });
  }

  onTestModuleEnd(module: TestModule) {
    this.#record({ type: "file", project: module.project.name, file: module.moduleId, ...countModule(module) });
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>) {
    const total = sumCounts([
      ...testModules.map(countModule),
      { passed: 0, failed: unhandledErrors.length, skipped: 0 },
    ]);
    this.#record({ type: "end", unhandledErrors: unhandledErrors.length });
    process.stdout.write(`\n${countLine(total)}\n`);
  }
}
