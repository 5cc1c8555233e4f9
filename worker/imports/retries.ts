// How often and how late an import batch is delivered again after a passing failure.

/** Must equal max_retries of the patron-import consumer in wrangler.toml: the last delivery is 1 + this. */
export const importMaxRetries = 5;

/** Seconds before the next delivery after `attempts` failed ones: 5, 10, 20, 40 … at most 300. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(300, 5 * 2 ** Math.max(0, attempts - 1));
}
