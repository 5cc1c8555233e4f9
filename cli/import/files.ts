// Input files that may be gzipped: `name.csv.gz` reads as `name.csv` would. A folder of data files
// may hold either form; the plain file wins when both exist.
import { createReadStream, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type Duplex, PassThrough, pipeline, type Readable } from "node:stream";
import { createGunzip, gunzipSync } from "node:zlib";

export function isGzipped(file: string): boolean {
  return /\.gz$/i.test(file);
}

/** `file` if it exists, otherwise `file.gz` if that exists, otherwise `file` (so errors name what was asked for). */
export function plainOrGzipped(file: string): string {
  if (isGzipped(file) || existsSync(file)) return file;
  return existsSync(`${file}.gz`) ? `${file}.gz` : file;
}

/** `name` in `folder`, or `name.gz` when only that exists. */
export function dataFileIn(folder: string, name: string): string {
  return plainOrGzipped(path.join(folder, name));
}

/** A `.gz` file whose bytes are not whole gzip data: cut short, or not compressed at all. */
export class UnreadableGzip extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnreadableGzip";
  }
}

/**
 * zlib's error for `file` as one line naming the file and what to check: its own words ("unexpected
 * end of file", "incorrect header check") name neither the file nor the compression. Other errors (a
 * missing file) are answered as they are.
 */
function gzipProblem(file: string, error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const words = (error as Error).message;
  if (code === "Z_BUF_ERROR")
    return new UnreadableGzip(
      `${file}: the gzip data ends early (${words}): the file was cut short, in a copy or a download. gunzip -t ${file} checks it.`,
    );
  if (code === "Z_DATA_ERROR")
    return new UnreadableGzip(
      `${file}: not gzip data, or damaged (${words}), though its name ends in .gz. gunzip -t ${file} checks it; a file that is not compressed is read under a name without .gz.`,
    );
  return error;
}

/** The file's bytes as a stream, decompressed when it ends in `.gz` (a damaged one ends it with an UnreadableGzip). */
export function openInput(file: string): Readable {
  if (!isGzipped(file)) return createReadStream(file);
  // The reader gets the error in the file's terms, not zlib's: `pipe` passes no error on, so each
  // stream's own ends `out` with it. A reader that stops early stops the file too.
  const source = createReadStream(file);
  const gunzip = createGunzip();
  const out = new PassThrough();
  const fail = (error: unknown) => out.destroy(gzipProblem(file, error) as Error);
  source.on("error", fail);
  gunzip.on("error", fail);
  source.pipe(gunzip).pipe(out);
  out.on("close", () => {
    source.destroy();
    gunzip.destroy();
  });
  return out;
}

/** `source` piped into `target`; an error in either (a missing file, a corrupt gzip) ends `target` with it. */
export function pipeOnward<T extends Duplex>(source: Readable, target: T): T {
  pipeline(source, target, () => {});
  return target;
}

/** The whole file as text, decompressed when it ends in `.gz`. */
export async function readInputText(file: string): Promise<string> {
  const bytes = await readFile(file);
  if (!isGzipped(file)) return bytes.toString("utf8");
  try {
    return gunzipSync(bytes).toString("utf8");
  } catch (error) {
    throw gzipProblem(file, error);
  }
}
