// What tests/reporter.ts records while a run goes on, and how tests/run.ts reads it: the files the run
// takes, each file started and finished with its counts, each finished test, and the end.

export type Counts = { passed: number; failed: number; skipped: number };
export type TestFile = { project: string; file: string };

export type ProgressRecord =
  | { type: "files"; files: TestFile[] }
  | ({ type: "start" } & TestFile)
  | { type: "case" }
  | ({ type: "file" } & TestFile & Counts)
  | { type: "end"; unhandledErrors: number };

export type RunProgress = {
  files: TestFile[];
  started: TestFile[];
  finished: (TestFile & Counts)[];
  /** Unhandled errors the run reported at its end; null when it never ended. */
  unhandledErrors: number | null;
};

/** The records one run appended, read back; a line cut short by a killed run is left out. */
export function readProgress(text: string): RunProgress {
  const progress: RunProgress = { files: [], started: [], finished: [], unhandledErrors: null };
  for (const line of text.split("\n")) {
    let record: ProgressRecord;
    try {
      record = JSON.parse(line);
    } catch {
      continue;
    }
    if (record.type === "files") progress.files.push(...record.files);
    else if (record.type === "start") progress.started.push({ project: record.project, file: record.file });
    else if (record.type === "file") progress.finished.push(record);
    else if (record.type === "end") progress.unhandledErrors = record.unhandledErrors;
  }
  return progress;
}

const key = ({ project, file }: TestFile) => `${project}\0${file}`;

/** The files a run was to take and did not finish, in the order it listed them. */
export function unfinishedFiles(progress: RunProgress): TestFile[] {
  const done = new Set(progress.finished.map(key));
  return progress.files.filter((file) => !done.has(key(file)));
}

/** The files a run had started and not finished: where it stalled. */
export function runningFiles(progress: RunProgress): TestFile[] {
  const done = new Set(progress.finished.map(key));
  return progress.started.filter((file) => !done.has(key(file)));
}

/** The files grouped by project, projects in first-seen order, so each project runs once. */
export function byProject(files: TestFile[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const { project, file } of files) groups.set(project, [...(groups.get(project) ?? []), file]);
  return groups;
}

/** Counts added up. */
export function sumCounts(counts: readonly Counts[]): Counts {
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const { passed, failed, skipped } of counts) {
    total.passed += passed;
    total.failed += failed;
    total.skipped += skipped;
  }
  return total;
}

/** The finished files' counts and the unhandled errors of runs that ended, added up. */
export function addCounts(runs: RunProgress[]): Counts {
  return sumCounts(
    runs.flatMap((run) => [...run.finished, { passed: 0, failed: run.unhandledErrors ?? 0, skipped: 0 }]),
  );
}
