// Input files that may be gzipped: `name.csv.gz` reads as `name.csv` would. A folder of data files
// may hold either form; the plain file wins when both exist.
import { createReadStream, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type Duplex, pipeline, type Readable } from "node:stream";
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

/** The file's bytes as a stream, decompressed when it ends in `.gz`. */
export function openInput(file: string): Readable {
  if (!isGzipped(file)) return createReadStream(file);
  return pipeOnward(createReadStream(file), createGunzip());
}

/** `source` piped into `target`; an error in either (a missing file, a corrupt gzip) ends `target` with it. */
export function pipeOnward<T extends Duplex>(source: Readable, target: T): T {
  pipeline(source, target, () => {});
  return target;
}

/** The whole file as text, decompressed when it ends in `.gz`. */
export async function readInputText(file: string): Promise<string> {
  const bytes = await readFile(file);
  return (isGzipped(file) ? gunzipSync(bytes) : bytes).toString("utf8");
}
