// Console sign-in through the real worker and real D1: the admin key buys an HttpOnly, SameSite=Strict
// session cookie whose id is stored only as a SHA-256; every admin route accepts it (writes only from
// the console's own origin with X-Patron-Console: 1), ingestion never does; signing out, or in
// again, ends it server-side. And /console with its deep links answers the app's HTML with the console's headers,
// marked signed out when the browser surely holds no session. Over https the cookie is __Host- prefixed,
// and every answer carries Strict-Transport-Security; over http neither. Plain http works only to this
// machine (a local run): to any other host, sign-in is refused, no session cookie is honoured and the
// console's pages redirect to https.
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { adminKey, apiKey, uniquePrefix } from "../fixtures/builders.ts";

/** The deployment, over https as a browser reaches it. */
const origin = "https://patron.test";
/** A local `npm start`: plain http to this machine. */
const localOrigin = "http://127.0.0.1:8787";
/** The deployment over plain http, across a network. */
const plainOrigin = "http://patron.test";
const consoleHeaders = { "Content-Type": "application/json", "X-Patron-Console": "1", Origin: origin };

async function signIn(key = adminKey, base = origin, name?: unknown) {
  return SELF.fetch(`${base}/v1/admin/session`, {
    method: "POST",
    headers: { ...consoleHeaders, Origin: base },
    body: JSON.stringify({ key, ...(name === undefined ? {} : { name }) }),
  });
}

/** The `name=value` part of the session cookie a response set. */
function sessionCookie(response: Response): string {
  const header = response.headers.get("Set-Cookie") ?? "";
  const pair = header.split(";")[0] ?? "";
  expect(pair).toMatch(/^(?:__Host-)?patron_session=[A-Za-z0-9_-]{40,}$/);
  return pair;
}

async function storedSessions(): Promise<{ id_hash: string; created_at: string; expires_at: string }[]> {
  const { results } = await env.DB.prepare("SELECT id_hash, created_at, expires_at FROM console_sessions").all();
  return results as { id_hash: string; created_at: string; expires_at: string }[];
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

const withCookie = (cookie: string, init: RequestInit = {}) => ({
  ...init,
  headers: { ...(init.headers as Record<string, string> | undefined), Cookie: cookie },
});

describe("console session", () => {
  it("refuses a wrong admin key plainly, sets no cookie and stores nothing", async () => {
    const before = (await storedSessions()).length;
    for (const key of [apiKey, `${adminKey}x`, adminKey.toUpperCase()]) {
      const response = await signIn(key);
      expect(response.status).toBe(401);
      expect(response.headers.get("Set-Cookie")).toBeNull();
      const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
      expect(body.error.code).toBe("unauthorized");
      expect(body.error.message).toBe("That admin key is not right.");
      expect(body.error.requestId).toBeTruthy();
    }
    const empty = await signIn("");
    expect(empty.status).toBe(400);
    expect((await storedSessions()).length).toBe(before);
  });

  it("sets an HttpOnly, SameSite=Strict cookie for / and stores only the id's SHA-256 with a 12 h expiry", async () => {
    // Over plain http to this machine (a local `npm start`): the plain, not Secure, cookie.
    const response = await signIn(adminKey, localOrigin);
    expect(response.status).toBe(201);
    const setCookie = response.headers.get("Set-Cookie") ?? "";
    expect(setCookie).toMatch(/;\s*HttpOnly/i);
    expect(setCookie).toMatch(/;\s*SameSite=Strict/i);
    expect(setCookie).toMatch(/;\s*Path=\/(;|$)/);
    expect(setCookie).toMatch(/;\s*Max-Age=43200/);
    expect(setCookie).not.toMatch(/;\s*Secure/i);
    expect(setCookie).toMatch(/^patron_session=/);
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    const sessionId = sessionCookie(response).split("=")[1]!;
    const rows = await storedSessions();
    expect(rows.some((row) => row.id_hash === sessionId)).toBe(false);
    const hash = await sha256Hex(sessionId);
    const stored = rows.find((candidate) => candidate.id_hash === hash);
    expect(stored).toBeDefined();
    expect(Date.parse(stored!.expires_at) - Date.parse(stored!.created_at)).toBe(12 * 3600 * 1000);
    const { data } = (await response.json()) as { data: { expiresAt: string } };
    expect(data.expiresAt).toBe(stored!.expires_at);
  });

  it("tells the console the shop's currency, for its money figures", async () => {
    const signedIn = await signIn();
    expect(((await signedIn.json()) as { data: { currency: string } }).data.currency).toBe("USD");
    const check = await SELF.fetch(`${origin}/v1/admin/session`, withCookie(sessionCookie(signedIn)));
    expect(await check.json()).toMatchObject({ data: { signedIn: true, via: "session", currency: "USD" } });
  });

  it("tells the console the retailer's time zone on sign-in and on the session check (RETAILER_TIME_ZONE, UTC here)", async () => {
    const response = await signIn();
    expect(((await response.json()) as { data: { timeZone: string } }).data.timeZone).toBe("UTC");
    const check = await SELF.fetch(`${origin}/v1/admin/session`, withCookie(sessionCookie(response)));
    expect(check.status).toBe(200);
    expect(await check.json()).toEqual({
      data: { signedIn: true, via: "session", name: null, timeZone: "UTC", currency: "USD", matchKeys: [] },
    });
  });

  it("tells the console the match keys its customer CSV may carry: none unless EXPORT_MATCH_KEYS enables them", async () => {
    const response = await signIn();
    expect(((await response.json()) as { data: { matchKeys: string[] } }).data.matchKeys).toEqual([]);
    // A deployment that opts in, in its own order and with an unknown name: the API's order, known names.
    const context = createExecutionContext();
    const optedIn = await createApp().fetch(
      new Request(`${origin}/v1/admin/session`, { headers: { Authorization: `Bearer ${adminKey}` } }),
      { ...env, EXPORT_MATCH_KEYS: "phone_sha256, account,postcode" },
      context,
    );
    await waitOnExecutionContext(context);
    expect(((await optedIn.json()) as { data: { matchKeys: string[] } }).data.matchKeys).toEqual([
      "account",
      "phone_sha256",
    ]);
  });

  it("marks the cookie Secure when the console is served over https", async () => {
    const response = await signIn(adminKey, origin);
    expect(response.status).toBe(201);
    expect(response.headers.get("Set-Cookie") ?? "").toMatch(/;\s*Secure/i);
  });

  it("names the cookie __Host-patron_session over https (Secure, Path=/, no Domain); the session opens the admin routes and signs out", async () => {
    const response = await signIn(adminKey, origin);
    expect(response.status).toBe(201);
    const setCookies = response.headers.getAll("Set-Cookie");
    expect(setCookies).toHaveLength(1);
    const setCookie = setCookies[0]!;
    expect(setCookie).toMatch(/^__Host-patron_session=[A-Za-z0-9_-]{40,};/);
    expect(setCookie).toMatch(/;\s*Secure/i);
    expect(setCookie).toMatch(/;\s*Path=\/(;|$)/);
    expect(setCookie).toMatch(/;\s*HttpOnly/i);
    expect(setCookie).toMatch(/;\s*SameSite=Strict/i);
    expect(setCookie).not.toMatch(/;\s*Domain=/i);
    const cookie = setCookie.split(";")[0]!;
    const check = await SELF.fetch(`${origin}/v1/admin/session`, withCookie(cookie));
    expect(check.status).toBe(200);
    expect(await check.json()).toMatchObject({ data: { signedIn: true, via: "session" } });
    // The page knows a browser with this cookie may be signed in.
    const page = await SELF.fetch(`${origin}/console`, withCookie(cookie, { headers: { "Sec-Fetch-Site": "none" } }));
    expect(await page.text()).toContain('<html lang="en">');
    const out = await SELF.fetch(
      `${origin}/v1/admin/session`,
      withCookie(cookie, { method: "DELETE", headers: { ...consoleHeaders, Origin: origin } }),
    );
    expect(out.status).toBe(200);
    const cleared = out.headers.getAll("Set-Cookie");
    expect(cleared).toHaveLength(1);
    expect(cleared[0]).toMatch(/^__Host-patron_session=;/);
    expect(cleared[0]).toMatch(/Max-Age=0/);
    expect(cleared[0]).toMatch(/;\s*Secure/i);
    expect((await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(cookie))).status).toBe(401);
  });

  it("over https still takes a plain patron_session cookie from before the prefix, and replaces it at the next sign-in", async () => {
    // A session signed in over https before the cookie took its prefix (Set-Cookie patron_session=…; Secure).
    const before = await signIn(adminKey, origin);
    const sessionId = before.headers.getAll("Set-Cookie")[0]!.split(";")[0]!.split("=")[1]!;
    const legacy = `patron_session=${sessionId}`;
    expect((await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(legacy))).status).toBe(200);
    const again = await SELF.fetch(
      `${origin}/v1/admin/session`,
      withCookie(legacy, {
        method: "POST",
        headers: { ...consoleHeaders, Origin: origin },
        body: JSON.stringify({ key: adminKey }),
      }),
    );
    expect(again.status).toBe(201);
    const setCookies = again.headers.getAll("Set-Cookie");
    // The plain cookie is cleared, the prefixed one set.
    expect(setCookies.find((line) => line.startsWith("patron_session="))).toMatch(/^patron_session=;.*Max-Age=0/);
    expect(setCookies.find((line) => line.startsWith("__Host-patron_session="))).toMatch(
      /^__Host-patron_session=\S{40,};/,
    );
  });

  it("refuses a sign-in that does not come from the console's page", async () => {
    const noHeader = await SELF.fetch(`${origin}/v1/admin/session`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: adminKey }),
    });
    expect(noHeader.status).toBe(403);
    expect(noHeader.headers.get("Set-Cookie")).toBeNull();
    // The message names what was refused: a sign-in has no session yet.
    expect(((await noHeader.json()) as { error: { message: string } }).error.message).toBe(
      'Signing in must come from the console itself (send "X-Patron-Console: 1" from the same origin).',
    );
    const otherSite = await SELF.fetch(`${origin}/v1/admin/session`, {
      method: "POST",
      headers: { ...consoleHeaders, Origin: "https://evil.example" },
      body: JSON.stringify({ key: adminKey }),
    });
    expect(otherSite.status).toBe(403);
  });

  it("is accepted by every admin route family, and never by ingestion", async () => {
    const cookie = sessionCookie(await signIn());
    for (const path of ["/v1/admin/session", "/v1/admin/segments", "/v1/admin/holdout", "/v1/admin/rules"]) {
      const response = await SELF.fetch(`${origin}${path}`, withCookie(cookie));
      expect(response.status, path).toBe(200);
      expect(response.headers.get("Cache-Control"), path).toMatch(/no-store/);
      const without = await SELF.fetch(`${origin}${path}`);
      expect(without.status, path).toBe(401);
    }
    const lookup = await SELF.fetch(
      `${origin}/v1/customers/lookup?kind=email&value=${uniquePrefix()}@example.com`,
      withCookie(cookie),
    );
    expect(lookup.status).toBe(404);
    const ingest = await SELF.fetch(
      `${origin}/v1/products`,
      withCookie(cookie, { method: "POST", headers: consoleHeaders, body: JSON.stringify({ products: [] }) }),
    );
    expect(ingest.status).toBe(401);
  });

  it("names the session's rule changes by the name given at sign-in; X-Patron-User still overrides, no name is admin", async () => {
    const named = await signIn(adminKey, origin, "  Maria Lopez ");
    expect(named.status).toBe(201);
    expect(((await named.json()) as { data: { name: string | null } }).data.name).toBe("Maria Lopez");
    const maria = sessionCookie(named);
    const check = await SELF.fetch(`${origin}/v1/admin/session`, withCookie(maria));
    expect(((await check.json()) as { data: { name: string | null } }).data.name).toBe("Maria Lopez");
    const create = (cookie: string, headers: Record<string, string> = {}) =>
      SELF.fetch(
        `${origin}/v1/admin/rules`,
        withCookie(cookie, {
          method: "POST",
          headers: { ...consoleHeaders, ...headers },
          body: JSON.stringify({
            name: `Boost ${uniquePrefix()}`,
            action: "boost",
            targetType: "category",
            // A target of its own each time: the same boost twice would be refused as a double (409).
            targetId: `c1-${uniquePrefix()}`,
            strength: 0.5,
          }),
        }),
      );
    const byWhom = async (response: Response) => {
      expect(response.status, await response.clone().text()).toBe(201);
      const { id } = ((await response.json()) as { data: { id: string } }).data;
      const versions = await SELF.fetch(`${origin}/v1/admin/rules/${id}/versions`, {
        headers: { Authorization: `Bearer ${adminKey}` },
      });
      return ((await versions.json()) as { data: { changedBy: string }[] }).data.map((version) => version.changedBy);
    };
    expect(await byWhom(await create(maria))).toEqual(["Maria Lopez"]);
    expect(await byWhom(await create(maria, { "X-Patron-User": "ops-bot" }))).toEqual(["ops-bot"]);
    expect(await byWhom(await create(sessionCookie(await signIn())))).toEqual(["admin"]);
    // A joiner stays (an emoji sequence, Persian spelling): only direction controls and zero-width spaces go.
    const joined = await signIn(adminKey, origin, "Sam 👩\u200D💻");
    expect(((await joined.json()) as { data: { name: string } }).data.name).toBe("Sam 👩\u200D💻");
    // A name with control characters, or too long, is refused, and no session is made.
    const before = (await storedSessions()).length;
    for (const bad of ["Maria\u0000", "x".repeat(201), 42, "Ana\u202Eztiro", "Ana\u200Bx"]) {
      const refused = await signIn(adminKey, origin, bad);
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { issues: { path: string[] }[] } }).error.issues[0]?.path).toEqual([
        "name",
      ]);
      expect(refused.headers.get("Set-Cookie")).toBeNull();
    }
    expect((await storedSessions()).length).toBe(before);
  });

  it("refuses cookie-authenticated writes from another site or without the console header", async () => {
    const cookie = sessionCookie(await signIn());
    const rule = () =>
      JSON.stringify({
        name: `Boost ${uniquePrefix()}`,
        action: "boost",
        targetType: "category",
        targetId: `c1-${uniquePrefix()}`,
        strength: 0.5,
      });
    const countRules = async () =>
      ((await env.DB.prepare("SELECT count(*) AS n FROM rules").first()) as { n: number }).n;
    const before = await countRules();
    const noHeader = await SELF.fetch(
      `${origin}/v1/admin/rules`,
      withCookie(cookie, { method: "POST", headers: { "Content-Type": "application/json" }, body: rule() }),
    );
    expect(noHeader.status).toBe(403);
    expect(((await noHeader.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    const crossSite = await SELF.fetch(
      `${origin}/v1/admin/rules`,
      withCookie(cookie, {
        method: "POST",
        headers: { ...consoleHeaders, Origin: "https://evil.example" },
        body: rule(),
      }),
    );
    expect(crossSite.status).toBe(403);
    expect(await countRules()).toBe(before);
    const fromConsole = await SELF.fetch(
      `${origin}/v1/admin/rules`,
      withCookie(cookie, { method: "POST", headers: consoleHeaders, body: rule() }),
    );
    expect(fromConsole.status).toBe(201);
    expect(await countRules()).toBe(before + 1);
    // The admin key itself needs no console header: servers and the CLI keep working as before.
    const withKey = await SELF.fetch(`${origin}/v1/admin/rules`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminKey}` },
      body: rule(),
    });
    expect(withKey.status).toBe(201);
  });

  it("signs out server-side: the row is gone, the cookie is cleared, the old cookie opens nothing", async () => {
    const cookie = sessionCookie(await signIn());
    const hash = await sha256Hex(cookie.split("=")[1]!);
    expect((await storedSessions()).some((row) => row.id_hash === hash)).toBe(true);
    const out = await SELF.fetch(
      `${origin}/v1/admin/session`,
      withCookie(cookie, { method: "DELETE", headers: consoleHeaders }),
    );
    expect(out.status).toBe(200);
    const cleared = out.headers.get("Set-Cookie") ?? "";
    expect(cleared).toMatch(/^__Host-patron_session=;/);
    expect(cleared).toMatch(/Max-Age=0/);
    expect((await storedSessions()).some((row) => row.id_hash === hash)).toBe(false);
    // A copy of the cookie kept by someone else is dead too.
    const replay = await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(cookie));
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: { message: string } }).error.message).toMatch(/sign in again/);
  });

  it("signing in again ends the session the browser carried: an earlier or planted cookie opens nothing after it", async () => {
    const first = sessionCookie(await signIn());
    const firstHash = await sha256Hex(first.split("=")[1]!);
    const signInCarrying = (cookie: string, key = adminKey, base = origin) =>
      SELF.fetch(
        `${base}/v1/admin/session`,
        withCookie(cookie, {
          method: "POST",
          headers: { ...consoleHeaders, Origin: base },
          body: JSON.stringify({ key }),
        }),
      );
    // A wrong key ends nothing.
    expect((await signInCarrying(first, "wrong")).status).toBe(401);
    expect((await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(first))).status).toBe(200);
    const again = await signInCarrying(first);
    expect(again.status).toBe(201);
    const second = sessionCookie(again);
    expect(second).not.toBe(first);
    expect((await storedSessions()).some((row) => row.id_hash === firstHash)).toBe(false);
    const replay = await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(first));
    expect(replay.status).toBe(401);
    expect((await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(second))).status).toBe(200);
    // Over https, both names a browser may carry (the prefixed cookie and one from before the prefix) end.
    const prefixed = (await signIn(adminKey, origin)).headers.getAll("Set-Cookie")[0]!.split(";")[0]!;
    const plainId = sessionCookie(await signIn()).split("=")[1]!;
    const both = `${prefixed}; patron_session=${plainId}`;
    expect((await signInCarrying(both, adminKey, origin)).status).toBe(201);
    for (const cookie of [prefixed, `patron_session=${plainId}`])
      expect((await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(cookie))).status, cookie).toBe(401);
  });

  it("counts wrong sign-ins and wrong admin keys as failed key checks: the address is then refused, right key or not", async () => {
    // The limiter counts in fixed 60 s windows (wrangler.toml: 10 failures): a 429 must come within 2 × 10 + 1.
    const address = `2001:db8:${crypto.randomUUID().slice(0, 4)}::7`;
    const wrongSignIn = () =>
      SELF.fetch(`${origin}/v1/admin/session`, {
        method: "POST",
        headers: { ...consoleHeaders, "CF-Connecting-IP": address },
        body: JSON.stringify({ key: "guess" }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 21 && statuses.at(-1) !== 429; i++) {
      const response =
        i % 2 === 0
          ? await wrongSignIn()
          : await SELF.fetch(`${origin}/v1/admin/segments`, {
              headers: { Authorization: `Bearer guess-${i}`, "CF-Connecting-IP": address },
            });
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.at(-1)).toBe(429);
    const right = await SELF.fetch(`${origin}/v1/admin/session`, {
      method: "POST",
      headers: { ...consoleHeaders, "CF-Connecting-IP": address },
      body: JSON.stringify({ key: adminKey }),
    });
    expect(right.status).toBe(429);
    expect(right.headers.get("Set-Cookie")).toBeNull();
  });

  it("does not count a cookie naming no live session as a failed key check: a dead or planted cookie locks nobody out", async () => {
    // Over https another host of the domain can plant a plain patron_session cookie (Domain=.patron.test);
    // a signed-out one is dead too. Neither is a guessed key: 25 such requests, over the 10 failures a
    // minute, are each told to sign in again, never 429.
    const address = `2001:db8:${crypto.randomUUID().slice(0, 4)}::8`;
    const planted = `patron_session=planted-${uniquePrefix()}-${"z".repeat(40)}`;
    const ended = sessionCookie(await signIn());
    await SELF.fetch(`${origin}/v1/admin/session`, withCookie(ended, { method: "DELETE", headers: consoleHeaders }));
    for (let i = 0; i < 25; i++) {
      const [base, cookie] = i % 2 === 0 ? [origin, planted] : [origin, ended];
      const response = await SELF.fetch(`${base}${i % 3 === 0 ? "/v1/admin/session" : "/v1/admin/segments"}`, {
        headers: { Cookie: cookie, "CF-Connecting-IP": address },
      });
      expect(response.status, `request ${i}`).toBe(401);
      const { error } = (await response.json()) as { error: { code: string; message: string; requestId: string } };
      expect(error).toMatchObject({ code: "unauthorized", message: "Your console session has ended: sign in again." });
      expect(error.requestId).toBeTruthy();
    }
    // The console signs in over the planted cookie: the __Host- cookie is set, and a request carrying
    // both (the planted one, set for the whole domain, is not this host's to clear) uses the live one.
    const signedIn = await SELF.fetch(
      `${origin}/v1/admin/session`,
      withCookie(planted, {
        method: "POST",
        headers: { ...consoleHeaders, Origin: origin, "CF-Connecting-IP": address },
        body: JSON.stringify({ key: adminKey }),
      }),
    );
    expect(signedIn.status).toBe(201);
    const prefixed = signedIn.headers
      .getAll("Set-Cookie")
      .find((line) => line.startsWith("__Host-patron_session="))!
      .split(";")[0]!;
    const both = await SELF.fetch(`${origin}/v1/admin/session`, {
      headers: { Cookie: `${planted}; ${prefixed}`, "CF-Connecting-IP": address },
    });
    expect(both.status).toBe(200);
    expect(await both.json()).toMatchObject({ data: { signedIn: true, via: "session" } });
    // Wrong keys from the address still count; once it is blocked, key checks answer 429 but the live
    // session, which no guesser can learn anything from, goes on working.
    const statuses: number[] = [];
    for (let i = 0; i < 21 && statuses.at(-1) !== 429; i++) {
      const response = await SELF.fetch(`${origin}/v1/admin/segments`, {
        headers: { Authorization: `Bearer guess-${i}`, "CF-Connecting-IP": address },
      });
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses.at(-1)).toBe(429);
    const stillIn = await SELF.fetch(`${origin}/v1/admin/segments`, {
      headers: { Cookie: `${planted}; ${prefixed}`, "CF-Connecting-IP": address },
    });
    expect(stillIn.status).toBe(200);
  });

  it("holds back an address sending more dead session cookies than the address allowance, before looking them up; sign-in stays open", async () => {
    // The address allowance as a stand-in of 3 a window (Cloudflare's limiter is 600 a minute, counted by
    // Cloudflare; rate-limits.test.ts runs the local one), so the test does not send 600 requests.
    const counts = new Map<string, number>();
    const allowance = {
      limit: async ({ key }: { key: string }) => {
        counts.set(key, (counts.get(key) ?? 0) + 1);
        return { success: (counts.get(key) ?? 0) <= 3 };
      },
    };
    const bindings = { ...env, RATE_LIMIT_ADDRESS: allowance } as typeof env;
    const app = createApp();
    const address = `2001:db8:${crypto.randomUUID().slice(0, 4)}::9`;
    const send = (cookie: string, from = address) =>
      app.request(`${origin}/v1/admin/segments`, { headers: { Cookie: cookie, "CF-Connecting-IP": from } }, bindings);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await send(`patron_session=made-up-${i}-${"q".repeat(40)}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    // While held back, a cookie from the address is not looked up, a live one included: 429 before the read.
    const live = sessionCookie(await signIn(adminKey, origin));
    const heldBack = await send(live);
    expect(heldBack.status).toBe(429);
    expect(Number(heldBack.headers.get("Retry-After"))).toBeGreaterThan(0);
    const { error } = (await heldBack.json()) as { error: { code: string; message: string } };
    expect(error).toMatchObject({ code: "rate_limited", message: expect.stringMatching(/ended console sessions/) });
    // Signing in is no cookie lookup: it stays open to the address, and so do key checks.
    const signedIn = await app.request(
      `${origin}/v1/admin/session`,
      {
        method: "POST",
        headers: { ...consoleHeaders, "CF-Connecting-IP": address },
        body: JSON.stringify({ key: adminKey }),
      },
      bindings,
    );
    expect(signedIn.status).toBe(201);
    const withKey = await app.request(
      `${origin}/v1/admin/segments`,
      { headers: { Authorization: `Bearer ${adminKey}`, "CF-Connecting-IP": address } },
      bindings,
    );
    expect(withKey.status).toBe(200);
    // Another address is not affected, and live sessions are never counted.
    const elsewhere = `2001:db8:${crypto.randomUUID().slice(0, 4)}::10`;
    for (let i = 0; i < 5; i++) expect((await send(live, elsewhere)).status).toBe(200);
  });

  it("refuses an expired session, and one stored before sessions kept their admin key's digest", async () => {
    const insert = async (sessionId: string, expiresAt: string) =>
      env.DB.prepare("INSERT INTO console_sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)")
        .bind(await sha256Hex(sessionId), "2020-01-01T00:00:00.000Z", expiresAt)
        .run();
    const expired = `expired-${uniquePrefix()}-${"x".repeat(40)}`;
    await insert(expired, "2020-01-01T12:00:00.000Z");
    // A row from before the admin_key_digest column cannot show which key opened it: it is refused too,
    // so a key rotated right after the upgrade ends every session.
    const undigested = `undigested-${uniquePrefix()}-${"x".repeat(40)}`;
    await insert(undigested, new Date(Date.now() + 3600_000).toISOString());
    for (const sessionId of [expired, undigested]) {
      const response = await SELF.fetch(`${origin}/v1/admin/segments`, {
        headers: { Cookie: `patron_session=${sessionId}` },
      });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
        "Your console session has ended: sign in again.",
      );
    }
  });

  it("ends every session when the admin key is rotated: refused, asked to sign in again, and the new key signs in", async () => {
    // The same worker and D1 with PATRON_ADMIN_KEY put to a new value, as `wrangler secret put` does.
    const rotatedKey = "rotated-admin-key";
    const rotated = async (url: string, init: RequestInit = {}) => {
      const context = createExecutionContext();
      const response = await createApp().fetch(
        new Request(url, init),
        { ...env, PATRON_ADMIN_KEY: rotatedKey },
        context,
      );
      await waitOnExecutionContext(context);
      return response;
    };
    const kept = sessionCookie(await signIn());
    const other = sessionCookie(await signIn(adminKey, origin, "Sam"));
    const prefixed = (await signIn(adminKey, origin)).headers.getAll("Set-Cookie")[0]!.split(";")[0]!;
    expect((await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(kept))).status).toBe(200);
    // Refused on every admin route, read or write, and not counted as failed key checks: 12 from one
    // address, over the 10 a minute, all 401.
    const address = `2001:db8:${crypto.randomUUID().slice(0, 4)}::9`;
    for (let i = 0; i < 12; i++) {
      const [base, cookie] = i % 3 === 2 ? [origin, prefixed] : [origin, i % 3 === 0 ? kept : other];
      const path = ["/v1/admin/session", "/v1/admin/segments", "/v1/admin/rules"][i % 3]!;
      const response = await rotated(`${base}${path}`, {
        method: path === "/v1/admin/rules" ? "POST" : "GET",
        headers: { ...consoleHeaders, Origin: base, Cookie: cookie, "CF-Connecting-IP": address },
        ...(path === "/v1/admin/rules" ? { body: JSON.stringify({}) } : {}),
      });
      expect(response.status, `${path} ${i}`).toBe(401);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(error).toEqual(
        expect.objectContaining({
          code: "unauthorized",
          message: "Your console session has ended: the admin key has changed since you signed in. Sign in again.",
        }),
      );
    }
    // The old key no longer signs in; the new one does, over the old cookie, and its session is live.
    const withOldKey = await rotated(`${origin}/v1/admin/session`, {
      method: "POST",
      headers: consoleHeaders,
      body: JSON.stringify({ key: adminKey }),
    });
    expect(withOldKey.status).toBe(401);
    const again = await rotated(`${origin}/v1/admin/session`, {
      method: "POST",
      headers: { ...consoleHeaders, Cookie: kept, "CF-Connecting-IP": address },
      body: JSON.stringify({ key: rotatedKey }),
    });
    expect(again.status).toBe(201);
    const fresh = sessionCookie(again);
    const check = await rotated(`${origin}/v1/admin/session`, withCookie(fresh));
    expect(check.status).toBe(200);
    expect(await check.json()).toMatchObject({ data: { signedIn: true, via: "session" } });
    // That sign-in dropped the rows of every session opened with the old key, the ones it did not carry too.
    const hashes = new Set((await storedSessions()).map((row) => row.id_hash));
    for (const cookie of [kept, other, prefixed])
      expect(hashes.has(await sha256Hex(cookie.split("=")[1]!))).toBe(false);
    expect(hashes.has(await sha256Hex(fresh.split("=")[1]!))).toBe(true);
    // The worker still on the old key does not take the new key's session either.
    expect((await SELF.fetch(`${origin}/v1/admin/segments`, withCookie(fresh))).status).toBe(401);
  });
});

describe("console page", () => {
  it.each(["/console", "/console/", "/console/customers", "/console/rules/some-rule"])(
    "%s answers the app's HTML with the console's security headers",
    async (path) => {
      const response = await SELF.fetch(`${origin}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
      const csp = response.headers.get("Content-Security-Policy") ?? "";
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).not.toContain("unsafe-eval");
      expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
      expect(response.headers.get("Cache-Control")).toBe("no-store");
      const html = await response.text();
      expect(html).toContain('<script type="module" src="/console/assets/console.js"></script>');
      // No inline script or style: every <script> has a src, and there is no <style> element.
      expect(html.match(/<script(?![^>]*\bsrc=)[^>]*>/g)).toBeNull();
      expect(html).not.toMatch(/<style|\sstyle=/);
    },
  );

  it("marks the page signed out when the browser sent no session cookie where it would have, so the app asks nothing", async () => {
    const html = async (headers: Record<string, string>) =>
      (await SELF.fetch(`${origin}/console/customers`, { headers })).text();
    const signedOut = /<html lang="en" data-signed-out>/;
    for (const site of ["none", "same-origin", "same-site"])
      expect(await html({ "Sec-Fetch-Site": site }), site).toMatch(signedOut);
    // A cookie, live or not, is checked by the app (GET /v1/admin/session), as is a link from another
    // site (a SameSite=Strict cookie stays behind) or a browser that does not say where it comes from.
    expect(await html({ "Sec-Fetch-Site": "none", Cookie: "patron_session=any" })).not.toMatch(signedOut);
    expect(await html({ "Sec-Fetch-Site": "cross-site" })).not.toMatch(signedOut);
    expect(await html({})).not.toMatch(signedOut);
    expect(await html({})).toContain('<html lang="en">');
  });

  it("answers 404 with the console's headers for a file that is not the console's", async () => {
    const response = await SELF.fetch(`${origin}/console/assets/..%2Fwidget%2Fv1.js`);
    expect(response.status).toBe(404);
    expect(response.headers.get("Content-Security-Policy")).toContain("frame-ancestors 'none'");
  });
});

describe("transport security", () => {
  const hsts = "Strict-Transport-Security";

  it("answers over https with Strict-Transport-Security for a year: console pages, API answers and errors", async () => {
    const requests: [string, RequestInit?][] = [
      ["/console"],
      ["/console/customers"],
      ["/v1/admin/session", { headers: { Authorization: `Bearer ${adminKey}` } }],
      ["/v1/admin/segments"],
      ["/health"],
      ["/no-such-route"],
      ["/v1/admin/session", { method: "POST", headers: consoleHeaders, body: "{}" }],
    ];
    const statuses: number[] = [];
    for (const [path, init] of requests) {
      const response = await SELF.fetch(`${origin}${path}`, init);
      statuses.push(response.status);
      expect(response.headers.get(hsts), path).toBe("max-age=31536000");
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 401, 200, 404, 400]);
  });

  it("says nosniff on every answer, http or https: API answers, errors, the console's pages", async () => {
    const requests: [string, RequestInit?][] = [
      [`${plainOrigin}/health`],
      [`${plainOrigin}/no-such-route`],
      [`${plainOrigin}/v1/recommendations?limit=many`],
      [`${plainOrigin}/v1/orders`, { method: "POST", body: "{}" }],
      [`${origin}/v1/admin/segments`],
      [`${origin}/console`],
    ];
    const statuses: number[] = [];
    for (const [url, init] of requests) {
      const response = await SELF.fetch(url, init);
      statuses.push(response.status);
      expect(response.headers.get("X-Content-Type-Options"), url).toBe("nosniff");
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([200, 404, 400, 401, 401, 200]);
  });

  it("sends none over plain http, nor to localhost or an IP address over https", async () => {
    for (const url of [
      `${localOrigin}/console`,
      `${plainOrigin}/health`,
      "http://localhost:8787/console",
      "https://localhost/console",
      "https://patron.localhost/health",
      "https://127.0.0.1/health",
      "https://[::1]/health",
    ]) {
      const response = await SELF.fetch(url);
      expect(response.status, url).toBe(200);
      expect(response.headers.get(hsts), url).toBeNull();
      await response.arrayBuffer();
    }
  });
});

describe("plain http", () => {
  /** Plain http to a host that is not this machine: a private address or a look-alike of a local name too. */
  const overNetwork = [
    plainOrigin,
    "http://192.168.1.20:8787",
    "http://10.0.0.5",
    "http://[fe80::1]",
    "http://localhost.patron.test",
    "http://127.0.0.1.patron.test",
  ];

  it("works as before to this machine: localhost, *.localhost, 127.0.0.0/8 and [::1] sign in with the plain cookie", async () => {
    for (const base of [
      localOrigin,
      "http://localhost:8787",
      "http://patron.localhost",
      "http://127.1.2.3",
      "http://[::1]:8787",
    ]) {
      const response = await signIn(adminKey, base);
      expect(response.status, base).toBe(201);
      const setCookie = response.headers.get("Set-Cookie") ?? "";
      expect(setCookie, base).toMatch(/^patron_session=[A-Za-z0-9_-]{40,};/);
      expect(setCookie, base).not.toMatch(/;\s*Secure/i);
      const cookie = sessionCookie(response);
      const check = await SELF.fetch(`${base}/v1/admin/segments`, withCookie(cookie));
      expect(check.status, base).toBe(200);
      await check.arrayBuffer();
      const write = await SELF.fetch(
        `${base}/v1/admin/rules`,
        withCookie(cookie, {
          method: "POST",
          headers: { ...consoleHeaders, Origin: base },
          body: JSON.stringify({
            name: `Boost ${uniquePrefix()}`,
            action: "boost",
            targetType: "category",
            // A target of its own each time: the same rule twice would be refused (409) as a duplicate.
            targetId: uniquePrefix("local-host-target"),
            strength: 0.5,
          }),
        }),
      );
      expect(write.status, base).toBe(201);
      const page = await SELF.fetch(`${base}/console/customers`, { redirect: "manual" });
      expect(page.status, base).toBe(200);
      expect(await page.text(), base).toContain('<script type="module" src="/console/assets/console.js"></script>');
    }
  });

  it("refuses the console sign-in to any other host with a 403 naming the https address: no cookie, no session, nothing counted", async () => {
    const before = (await storedSessions()).length;
    const address = `2001:db8:${crypto.randomUUID().slice(0, 4)}::a`;
    for (const base of overNetwork) {
      // The right key and wrong ones alike, more than the 10 failed key checks a minute allow: none is
      // checked, so none is counted and the address is never blocked.
      for (const key of [adminKey, "guess", "guess-again"]) {
        const response = await SELF.fetch(`${base}/v1/admin/session`, {
          method: "POST",
          headers: { ...consoleHeaders, Origin: base, "CF-Connecting-IP": address },
          body: JSON.stringify({ key }),
        });
        expect(response.status, `${base} ${key}`).toBe(403);
        expect(response.headers.get("Set-Cookie"), base).toBeNull();
        expect(response.headers.get("Cache-Control"), base).toBe("no-store");
        const secure = new URL(base);
        secure.protocol = "https:";
        const { error } = (await response.json()) as { error: { code: string; message: string; requestId: string } };
        expect(error.code).toBe("forbidden");
        expect(error.requestId).toBeTruthy();
        expect(error.message).toBe(
          `Signing in over plain http would send the admin key in clear: open the console over https, at ${secure.origin}/console, and sign in there.`,
        );
      }
    }
    expect((await storedSessions()).length).toBe(before);
    // The same address still signs in over https.
    const secure = await SELF.fetch(`${origin}/v1/admin/session`, {
      method: "POST",
      headers: { ...consoleHeaders, "CF-Connecting-IP": address },
      body: JSON.stringify({ key: adminKey }),
    });
    expect(secure.status).toBe(201);
  });

  it("honours no session cookie sent over plain http to another host: the usual 401, nothing written, the session live over https", async () => {
    const prefixed = sessionCookie(await signIn());
    const plain = `patron_session=${prefixed.split("=")[1]}`;
    const countRules = async () =>
      ((await env.DB.prepare("SELECT count(*) AS n FROM rules").first()) as { n: number }).n;
    const rulesBefore = await countRules();
    for (const base of overNetwork)
      for (const cookie of [prefixed, plain, `${plain}; ${prefixed}`]) {
        for (const path of ["/v1/admin/session", "/v1/admin/segments"]) {
          const response = await SELF.fetch(`${base}${path}`, withCookie(cookie));
          expect(response.status, `${base}${path} ${cookie}`).toBe(401);
          const { error } = (await response.json()) as { error: { code: string; message: string } };
          expect(error).toMatchObject({
            code: "unauthorized",
            message: 'Missing admin key: send "Authorization: Bearer <key>".',
          });
        }
        const write = await SELF.fetch(
          `${base}/v1/admin/rules`,
          withCookie(cookie, {
            method: "POST",
            headers: { ...consoleHeaders, Origin: base },
            body: JSON.stringify({
              name: `Boost ${uniquePrefix()}`,
              action: "boost",
              targetType: "category",
              targetId: "c1",
              strength: 0.5,
            }),
          }),
        );
        expect(write.status, `${base} write`).toBe(401);
        await write.arrayBuffer();
      }
    expect(await countRules()).toBe(rulesBefore);
    // Refused in clear, not ended: the same cookie goes on working over https.
    const check = await SELF.fetch(`${origin}/v1/admin/session`, withCookie(prefixed));
    expect(check.status).toBe(200);
    expect(await check.json()).toMatchObject({ data: { signedIn: true, via: "session" } });
  });

  it("redirects the console's pages to the same address over https (308), and not to this machine", async () => {
    for (const [url, location] of [
      [`${plainOrigin}/console`, `${origin}/console`],
      [`${plainOrigin}/console/`, `${origin}/console/`],
      [
        `${plainOrigin}/console/customers?stage=fading&sort=-overdueRatio`,
        `${origin}/console/customers?stage=fading&sort=-overdueRatio`,
      ],
      [`${plainOrigin}/console/assets/console.js`, `${origin}/console/assets/console.js`],
      ["http://patron.test:8080/console/models", "https://patron.test:8080/console/models"],
      ["http://192.168.1.20/console", "https://192.168.1.20/console"],
    ] as const) {
      // A browser carrying a session cookie is redirected the same: nothing is read in clear.
      const response = await SELF.fetch(url, {
        redirect: "manual",
        headers: { "Sec-Fetch-Site": "none", Cookie: "patron_session=any" },
      });
      expect(response.status, url).toBe(308);
      expect(response.headers.get("Location"), url).toBe(location);
      expect(response.headers.get("Set-Cookie"), url).toBeNull();
      // Over plain http the header would be ignored; it comes with the first answer over https.
      expect(response.headers.get("Strict-Transport-Security"), url).toBeNull();
      await response.arrayBuffer();
    }
    for (const url of [
      `${localOrigin}/console`,
      "http://localhost:8787/console/customers",
      "http://[::1]:8787/console",
    ]) {
      const response = await SELF.fetch(url, { redirect: "manual" });
      expect(response.status, url).toBe(200);
      await response.arrayBuffer();
    }
  });
});
