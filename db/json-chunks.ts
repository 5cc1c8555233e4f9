// Cuts an array into JSON texts small enough to bind as one D1 value each (db/batch.ts jsonEach).

/**
 * D1 refuses any single string over 2,000,000 bytes (SQLITE_TOOBIG), bound parameters included. An
 * array that travels as JSON is cut into parameters of at most this many UTF-8 bytes.
 */
export const maxJsonParamBytes = 500_000;

/** UTF-8 length of a string, without allocating its encoding. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Splits `items` into JSON array texts of at most `budget` UTF-8 bytes each (one item per text at least). */
export function jsonChunks(items: readonly unknown[], budget = maxJsonParamBytes): string[] {
  const chunks: string[] = [];
  let parts: string[] = [];
  let size = 2;
  for (const item of items) {
    const text = JSON.stringify(item) ?? "null";
    const bytes = utf8Bytes(text) + 1;
    if (parts.length > 0 && size + bytes > budget) {
      chunks.push(`[${parts.join(",")}]`);
      parts = [];
      size = 2;
    }
    parts.push(text);
    size += bytes;
  }
  chunks.push(`[${parts.join(",")}]`);
  return chunks;
}
