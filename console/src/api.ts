// The console's one way to the API: same-origin fetches that carry the session cookie, mark every
// request as the console's own (X-Patron-Console: 1, required on writes made with the cookie), and
// turn the error envelope into an ApiProblem. A 401 anywhere means the session ended: sign in again.
import { signal } from "@preact/signals";
import { zoneAbbreviation } from "./time-zone.ts";

export interface Issue {
  path: (string | number)[];
  message: string;
}

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: Issue[] = [],
    readonly requestId = "",
  ) {
    super(message);
  }
}

/** null while unknown (the first check is in flight), then whether the browser holds a live session. */
export const signedIn = signal<boolean | null>(null);

/**
 * The session ended under an open page (a 401 while signed in), not by signing out: the page stays, out
 * of sight, behind the sign-in form, so a rule being written is still there after signing in again.
 */
export const sessionEnded = signal(false);

/**
 * Which session a request was sent in: one sent before a sign-in and refused (401) after it is about
 * the session that ended, not the new one.
 */
let sessionEpoch = 0;
export function sessionStarted(): void {
  sessionEpoch++;
}

/** The shop's currency (RETAILER_CURRENCY), from the session check or the sign-in: every amount is in it. */
export const shopCurrency = signal("");
/** The match keys this deployment lets a customer list's CSV carry (EXPORT_MATCH_KEYS), from the session check. */
export const exportMatchKeys = signal<string[]>([]);

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const sentIn = sessionEpoch;
  const response = await send(method, path, body);
  const payload = (await response.json().catch(() => null)) as Envelope<T> | null;
  if (!response.ok) throw refused(response, payload, path, sentIn);
  return payload?.data as T;
}

/**
 * Asks for a download (a CSV) and reads no more than its status: a refusal throws as `api` does, with
 * the API's message; an answer that would download is cut off unread, for the browser to fetch again.
 */
export async function checkDownload(path: string): Promise<void> {
  const sentIn = sessionEpoch;
  const response = await send("GET", path);
  if (response.ok) {
    await response.body?.cancel();
    return;
  }
  throw refused(response, (await response.json().catch(() => null)) as Envelope<unknown> | null, path, sentIn);
}

interface Envelope<T> {
  data?: T;
  error?: { code: string; message: string; issues?: Issue[]; requestId?: string };
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  try {
    return await fetch(path, {
      method,
      credentials: "same-origin",
      headers: {
        "X-Patron-Console": "1",
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiProblem(0, "network", "Patron could not be reached. Check the connection and try again.");
  }
}

/** The error envelope as an ApiProblem; a 401 to a request of this session ends it. */
function refused(response: Response, payload: Envelope<unknown> | null, path: string, sentIn: number): ApiProblem {
  const error = payload?.error;
  if (response.status === 401 && path !== "/v1/admin/session" && sentIn === sessionEpoch) {
    if (signedIn.value) sessionEnded.value = true;
    signedIn.value = false;
  }
  return new ApiProblem(
    response.status,
    error?.code ?? "internal",
    error?.message ?? `The request failed (${response.status}).`,
    error?.issues ?? [],
    error?.requestId ?? "",
  );
}

export const get = <T>(path: string) => api<T>("GET", path);

/** Money as the retailer's currency would show it, without pretending to know the currency. */
export function money(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** A heading over amounts, naming the shop's currency once known: "Revenue (USD)". */
export function inCurrency(label: string): string {
  return shopCurrency.value ? `${label} (${shopCurrency.value})` : label;
}

/** An amount with the shop's currency, as the money tiles show it: "12,080.00 USD". */
export function moneyIn(value: number | null | undefined): string {
  const amount = money(value);
  return amount === "–" || !shopCurrency.value ? amount : `${amount} ${shopCurrency.value}`;
}

/**
 * A share as a percentage with `digits` decimals: "47%". A share between 0 and 1 never reads as 0% or
 * 100%, which would say none or all: below the last digit it is "<1%" ("<0.1%" with one decimal), and
 * next to 1 it takes one decimal more ("99.6%"), or reads ">99.9%".
 */
export function percent(value: number | null | undefined, digits = 0): string {
  if (value == null || !Number.isFinite(value)) return "–";
  const shown = (value * 100).toFixed(digits);
  if (value > 0 && value < 1 && Number(shown) === 0) return `<${(10 ** -digits).toFixed(digits)}%`;
  if (value > 0 && value < 1 && Number(shown) === 100) {
    const finer = (value * 100).toFixed(digits + 1);
    return Number(finer) < 100 ? `${finer}%` : `>${(100 - 10 ** -(digits + 1)).toFixed(digits + 1)}%`;
  }
  return `${shown}%`;
}

/**
 * P(alive) as a percentage. The API rounds it to 4 places, so a chance under 0.005% arrives as 0; a
 * customer still worth something (CLV above 0) has a chance above 0, which reads "<1%", not "0%".
 */
export function alivePercent(probabilityAlive: number, clv12: number): string {
  return percent(probabilityAlive === 0 && clv12 > 0 ? Number.MIN_VALUE : probabilityAlive);
}

/** An overdue ratio (days since the last order ÷ the usual days between orders), as the API rounds it: "1.72". */
export const ratio = (value: number | null | undefined) =>
  value == null || !Number.isFinite(value) ? "–" : value.toFixed(2);

/**
 * The retailer's time zone (RETAILER_TIME_ZONE, from GET or POST /v1/admin/session): every date and time
 * the console shows is on its clock, whatever zone the browser is in.
 */
export const timeZone = signal("UTC");

/** The zone's name as the console says it where times are shown: "Times in Europe/London." */
export const timesIn = () => `Times in ${timeZone.value}, the retailer's time zone.`;

const parsed = (value: string | number) => new Date(typeof value === "number" ? value : Date.parse(value));

/** A date and time as "1 Dec 2026, 09:30 GMT", on the retailer's clock, with the zone's short name. */
export function dateTime(value: string | number | null | undefined): string {
  if (value == null || value === "") return "–";
  const date = parsed(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const zone = timeZone.value;
  const text = date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: zone });
  return `${text} ${zoneAbbreviation(date.getTime(), zone)}`;
}

/**
 * A date as "1 Dec 2026", on the retailer's clock. A date the API sends without a time ("2017-09-04": a
 * day it counted, such as a diagnostics period's) is that day wherever the retailer is: read at UTC
 * midnight and shown on a clock west of UTC, it would read a day early.
 */
export function day(value: string | number | null | undefined): string {
  if (value == null || value === "") return "–";
  const date = parsed(value);
  const calendarDay = typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value);
  return Number.isNaN(date.getTime())
    ? String(value)
    : date.toLocaleDateString("en-GB", { dateStyle: "medium", timeZone: calendarDay ? "UTC" : timeZone.value });
}

/**
 * When the next order is expected, as the customer page and the customer list both word it: a fading
 * customer may have stopped, so their date holds only if they still buy ("if still buying: around 3 Mar 2026").
 */
export function nextOrder(stage: string, at: string | null | undefined): string {
  const date = day(at);
  return stage === "fading" && date !== "–" ? `if still buying: around ${date}` : date;
}

export const words = (value: string | null | undefined) => (value ? value.replace(/_/g, " ") : "–");

/** A whole number with thousands separators, as every count in the console is written: "1,496". */
export const whole = (n: number | null | undefined) => (n == null ? "–" : n.toLocaleString("en-US"));

/** A count with its noun, singular for exactly one: "1 order", "3 orders", "1,200 customers", "2 categories". */
export const count = (n: number, noun: string, plural = `${noun}s`) =>
  `${n.toLocaleString("en-US")} ${n === 1 ? noun : plural}`;

/**
 * An API message about a form's field in the form's words: the API names fields as its JSON does
 * ("endsAt must be after startsAt"); under the field it reads "Ends must be after Starts". A message's
 * first word is its field's name; after it only names in camelCase are replaced, so plain words ("name"
 * in "choose another name") stay as they are.
 */
export function inFormWords(message: string, labels: Record<string, string>): string {
  return (
    message
      .replace(/\b[a-z][A-Za-z]*\b/g, (word, at: number) =>
        (at === 0 || /[A-Z]/.test(word)) && Object.hasOwn(labels, word) ? (labels[word] as string) : word,
      )
      // The API's values in snake_case ("allow_discounts") as the form's menus write them: "allow discounts";
      // never inside quotes, where the text is the user's own (an audience named "summer_sale").
      .replace(/"[^"]*"|\b[a-z]+(?:_[a-z]+)+\b/g, (match) => (match.startsWith('"') ? match : words(match)))
  );
}

/**
 * A number as typed in a form: "1.5", or "1,5" with a decimal comma (read as 1.5, never as 15);
 * anything else comes back as typed, for the API to say under the field that it is not a number.
 */
export function typedNumber(value: string): number | string | null {
  const trimmed = value.trim();
  if (trimmed === "") return null;
  // "1,000" may be a thousand or one: sent as typed, for the API to refuse, never guessed.
  const decimal =
    /^[+-]?\d+,\d+$/.test(trimmed) && !/^[+-]?\d{1,3},\d{3}$/.test(trimmed) ? trimmed.replace(",", ".") : trimmed;
  const number = Number(decimal);
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(decimal) && Number.isFinite(number) ? number : trimmed;
}
