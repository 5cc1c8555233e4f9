// HTTP client for the ingestion API: one POST per batch (and the GETs of an import's progress), retried with exponential backoff and full
// jitter on network errors, timeouts, 408, 409 (customers busy in another request), 429 (rate limited)
// and 5xx (503: the database is busy), honouring Retry-After, up to a bounded number of attempts. A
// connection refused before the worker ever answered fails at once: nothing listens there. A 400
// is the caller's data and is never retried; a 401/403 is a wrong key. A host name that does not
// resolve before the worker ever answered fails at once too (a mistyped --url), and so does an answer
// that is not Patron's JSON (another site at that address). Safe to retry because ingestion is
// idempotent on order id and a refused batch wrote nothing. The sleep, randomness and fetch are
// injectable for tests.

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 8,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  timeoutMs: 120_000,
};

export interface ApiIssue {
  path: (string | number)[];
  message: string;
}

/** The server refused the batch as invalid (400): the data must be fixed. */
export class BatchRejected extends Error {
  constructor(
    readonly status: number,
    readonly requestId: string | null,
    readonly issues: ApiIssue[],
    message: string,
  ) {
    super(message);
  }
}

/** A response that retrying cannot fix (401, 403, 404, 413 ...) or retries ran out. */
export class IngestFailed extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

export interface IngestClientOptions {
  url: string;
  apiKey: string;
  /** Where the key came from, named when the worker refuses it (401/403); default "--key". */
  keyFrom?: string;
  /** Said after "gave up" when no attempt reached the worker at all (nothing listening, say). */
  unreachableHint?: string;
  retry?: Partial<RetryPolicy>;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onRetry?: (info: RetryInfo) => void;
}

/** What a retry is about to do: `attempt` failed for `reason`; the next starts after `delayMs`. */
export interface RetryInfo {
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  reason: string;
}

/** The progress line printed before a retry. */
export function describeRetry(info: RetryInfo): string {
  return `retrying in ${info.delayMs} ms (attempt ${info.attempt + 1} of ${info.maxAttempts}): ${info.reason}`;
}

export interface PostResult<T> {
  data: T;
  attempts: number;
  /**
   * Indexes of the batch's records a refused attempt had already stored (customer shards: the 409's
   * `issues` name them `["orders", index]`), so that the answer to the resend, which calls them
   * duplicates, can be counted as this run's.
   */
  storedBeforeRetry: number[];
}

/** The issue a refused ingestion gives each order it stored before refusing (worker/orders/orders.routes.ts). */
const storedBeforeRefusal = "stored by this request before it was refused";

/** Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): uniform in [0, min(cap, base·2^n)]. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(random() * ceiling);
}

/** Retry-After as seconds or an HTTP date, in ms; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/**
 * 408 timeout, 429 rate limited, 5xx, and a 409 conflict that carries `Retry-After` (the customers are
 * being updated by another request). A 409 without it does not go away by waiting (an identifier
 * linking too many orders, an import batch resent with other orders): it is not retried.
 */
export function isRetryableStatus(status: number, retryAfter: string | null = null): boolean {
  return status === 408 || status === 429 || status >= 500 || (status === 409 && retryAfter !== null);
}

/** The first line of a plain-text answer (a proxy's page in front of the worker); "" for JSON or nothing. */
function plainTextLine(text: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) return "";
  return (trimmed.split("\n")[0] ?? "").slice(0, 200);
}

export class IngestClient {
  private readonly policy: RetryPolicy;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  /** Whether the worker has answered any request of this client: until then a refused connection means nothing listens. */
  private reached = false;
  readonly baseUrl: string;

  constructor(private readonly options: IngestClientOptions) {
    this.policy = { ...defaultRetryPolicy, ...options.retry };
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.baseUrl = options.url.replace(/\/+$/, "");
  }

  async post<T>(path: string, body: unknown): Promise<PostResult<T>> {
    return this.request<T>("POST", path, JSON.stringify(body));
  }

  /**
   * A read (an import's progress), retried like a post; `timeoutMs` bounds each attempt when the read
   * is known to be quick (the policy's timeout otherwise).
   */
  async get<T>(path: string, options: { timeoutMs?: number } = {}): Promise<PostResult<T>> {
    return this.request<T>("GET", path, undefined, options.timeoutMs);
  }

  /** The answer came from something other than Patron (another site, a login page, a wrong path prefix). */
  private notPatron(path: string, response: Response, text: string): string {
    const type = (response.headers.get("Content-Type") ?? "no content type").split(";")[0];
    const start = text.trim().replace(/\s+/g, " ").slice(0, 80);
    return (
      `${this.baseUrl}${path}: HTTP ${response.status} (${type}) is not an answer of Patron's API` +
      `${start ? `: ${JSON.stringify(start)}` : ""}; check that --url is the worker's address` +
      (response.status === 401 || response.status === 403 ? " (or what stands in front of it refused the request)" : "")
    );
  }

  private async request<T>(
    method: "GET" | "POST",
    path: string,
    payload?: string,
    timeoutMs = this.policy.timeoutMs,
  ): Promise<PostResult<T>> {
    let answered = false;
    const storedBeforeRetry = new Set<number>();
    for (let attempt = 1; ; attempt++) {
      let reason: string;
      let serverDelay: number | null = null;
      try {
        const response = await this.fetchImpl(`${this.baseUrl}${path}`, {
          method,
          headers: {
            Authorization: `Bearer ${this.options.apiKey}`,
            ...(payload === undefined ? {} : { "Content-Type": "application/json" }),
          },
          body: payload,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await response.text();
        answered = true;
        this.reached = true;
        if (response.ok) {
          const data = parseDataEnvelope<T>(text);
          if (data === undefined) throw new IngestFailed(this.notPatron(path, response, text), response.status);
          return { data: data.data, attempts: attempt, storedBeforeRetry: [...storedBeforeRetry] };
        }
        const error = parseErrorEnvelope(text);
        if (response.status === 400 || response.status === 422)
          throw new BatchRejected(
            response.status,
            error?.requestId ?? response.headers.get("X-Request-Id"),
            error?.issues ?? [],
            error?.message ?? `HTTP ${response.status}`,
          );
        if (!isRetryableStatus(response.status, response.headers.get("Retry-After"))) {
          const hint =
            response.status === 401 || response.status === 403
              ? ` (check ${this.options.keyFrom ?? "--key"})`
              : response.status === 413
                ? " (lower --batch-size)"
                : "";
          // A 413 without Patron's envelope is the platform's own page (the body limit): the hint holds.
          if (!error && response.status !== 413)
            throw new IngestFailed(this.notPatron(path, response, text), response.status);
          throw new IngestFailed(
            `${this.baseUrl}${path}: HTTP ${response.status} ${error?.message ?? plainTextLine(text)}${hint}`,
            response.status,
          );
        }
        for (const issue of error?.issues ?? [])
          if (issue.message === storedBeforeRefusal && typeof issue.path[1] === "number")
            storedBeforeRetry.add(issue.path[1]);
        reason = `HTTP ${response.status} ${error?.message ?? plainTextLine(text)}`.trimEnd();
        serverDelay = retryAfterMs(response.headers.get("Retry-After"), Date.now());
      } catch (error) {
        if (error instanceof BatchRejected || error instanceof IngestFailed) throw error;
        reason = describeFetchError(error);
        // Refused before the worker ever answered: nothing listens at the URL, and waiting (about 30 s
        // of backoff) would not start it. Once it has answered, a refusal is a restart: retried. A
        // name that does not resolve is a mistyped host (a passing DNS fault says EAI_AGAIN instead).
        if (!this.reached && connectionRefused(error)) {
          const hint = this.options.unreachableHint ? `. ${this.options.unreachableHint}` : "";
          throw new IngestFailed(`${this.baseUrl}${path}: connection refused${hint}`, null);
        }
        // Ports fetch never calls (6000, 6666, 9 …: the Fetch standard's "bad ports") fail alike every time.
        if (causeMessage(error) === "bad port")
          throw new IngestFailed(
            `${this.baseUrl}${path}: fetch refuses to call port ${new URL(this.baseUrl).port} (a "bad port" of the Fetch standard): run the worker on another`,
            null,
          );
        if (!this.reached && causeCode(error) === "ENOTFOUND")
          throw new IngestFailed(
            `${this.baseUrl}${path}: no such host ${JSON.stringify(new URL(this.baseUrl).hostname)} (check --url)`,
            null,
          );
      }
      if (attempt >= this.policy.maxAttempts) {
        const hint = !answered && this.options.unreachableHint ? `. ${this.options.unreachableHint}` : "";
        throw new IngestFailed(
          `${this.baseUrl}${path}: gave up after ${attempt} attempts (last: ${reason})${hint}`,
          null,
        );
      }
      const delayMs = Math.min(
        this.policy.maxDelayMs,
        Math.max(serverDelay ?? 0, backoffDelay(attempt, this.policy, this.random)),
      );
      this.options.onRetry?.({ attempt, maxAttempts: this.policy.maxAttempts, delayMs, reason });
      await this.sleep(delayMs);
    }
  }
}

/**
 * What a fetch that failed without an answer says, with its cause: Node's fetch says only "fetch
 * failed" and keeps the reason (getaddrinfo ENOTFOUND, ECONNRESET, a bad port) in `cause`.
 */
export function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? cause.message || (cause as { code?: string }).code : undefined;
  return `${error.name}: ${error.message}${detail ? ` (${detail})` : ""}`;
}

function causeMessage(error: unknown): string | undefined {
  return (error as { cause?: { message?: string } } | null)?.cause?.message;
}

function causeCode(error: unknown): string | undefined {
  return (error as { cause?: { code?: string } } | null)?.cause?.code;
}

/**
 * Whether a fetch failed because the connection was refused (Node's fetch: a TypeError whose cause has
 * the code, or an AggregateError of them when a name resolves to several addresses).
 */
export function connectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[] } } | null)?.cause;
  if (!cause) return false;
  if (cause.code === "ECONNREFUSED") return true;
  return Array.isArray(cause.errors) && cause.errors.length > 0 && cause.errors.every((e) => e.code === "ECONNREFUSED");
}

/** Patron's success envelope `{"data": …}`, or undefined when the text is something else. */
function parseDataEnvelope<T>(text: string): { data: T } | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === "object" && "data" in parsed ? (parsed as { data: T }) : undefined;
  } catch {
    return undefined;
  }
}

function parseErrorEnvelope(text: string): { message?: string; requestId?: string; issues?: ApiIssue[] } | null {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string; requestId?: string; issues?: ApiIssue[] } };
    return parsed.error ?? null;
  } catch {
    return null;
  }
}
