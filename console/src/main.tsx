// The console's entry: checks the session, then shows the sign-in form or the app with its navigation.
import "../console.css";
import { signal } from "@preact/signals";
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { LocationProvider, Route, Router, useLocation } from "preact-iso";
import {
  ApiProblem,
  api,
  exportMatchKeys,
  sessionEnded,
  sessionStarted,
  shopCurrency,
  signedIn,
  timeZone,
} from "./api.ts";
import { CustomerPage, CustomersPage } from "./pages/customers.tsx";
import { ExperimentsPage } from "./pages/experiments.tsx";
import { ModelsPage } from "./pages/models.tsx";
import { OverviewPage } from "./pages/overview.tsx";
import { RuleEditPage, RulesPage } from "./pages/rules.tsx";
import { focusNextHeading } from "./ui.tsx";

const links = [
  { href: "/console", label: "Overview" },
  { href: "/console/customers", label: "Customers" },
  { href: "/console/rules", label: "Rules" },
  { href: "/console/experiments", label: "Experiments" },
  { href: "/console/models", label: "Models" },
];

/**
 * What the session routes answer that the console keeps: the retailer's time zone, for every date
 * shown, and the shop's currency, for its money figures.
 */
interface Session {
  timeZone?: string;
  currency?: string;
  matchKeys?: string[];
  /** The name given at sign-in: the rule history's "By" for this session's changes. */
  name?: string | null;
}

/** Who is signed in, as they named themselves (null: no name given). */
const userName = signal<string | null>(null);

/** The browser remembers the name last given here, so signing in again needs only the key. */
const nameKey = "patron:console:name";
const rememberedName = () => {
  try {
    return localStorage.getItem(nameKey) ?? "";
  } catch {
    return "";
  }
};

function startSession(session: Session | undefined) {
  userName.value = session?.name ?? null;
  timeZone.value = session?.timeZone ?? "UTC";
  shopCurrency.value = session?.currency ?? shopCurrency.value;
  exportMatchKeys.value = session?.matchKeys ?? exportMatchKeys.value;
  sessionStarted();
  sessionEnded.value = false;
  signedIn.value = true;
}

function isCurrent(path: string, href: string): boolean {
  const clean = path.replace(/\/+$/, "") || "/console";
  return href === "/console" ? clean === "/console" : clean === href || clean.startsWith(`${href}/`);
}

/** The sign-in form; `ended`: over a page whose session ended, which it says is kept. */
function SignIn({ ended = false }: { ended?: boolean }) {
  const [key, setKey] = useState("");
  const [name, setName] = useState(rememberedName);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = useRef<HTMLInputElement>(null);
  useEffect(() => field.current?.focus(), []);
  // The tab says what is on screen, not the name of a page gone (signed out) or kept out of sight behind
  // the form (the session ended), a customer's, say; the kept page's name comes back with it.
  useEffect(() => {
    const kept = document.title;
    document.title = ended ? "Session ended · Patron console" : "Sign in · Patron console";
    return () => {
      if (ended) document.title = kept;
    };
  }, [ended]);
  async function submit(event: Event) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setProblem(null);
    try {
      const session = await api<Session>("POST", "/v1/admin/session", { key, name });
      try {
        localStorage.setItem(nameKey, name.trim());
      } catch {}
      setKey("");
      if (ended) {
        startSession(session);
        // The kept page comes back as it was: the keyboard's focus goes to it, not to the page's body.
        requestAnimationFrame(() => document.getElementById("main")?.focus());
      } else {
        focusNextHeading();
        startSession(session);
      }
    } catch (error) {
      setProblem(error instanceof ApiProblem ? error.message : "Signing in failed. Try again.");
      field.current?.focus();
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="signin" id={ended ? "signin" : "main"}>
      <form class="card" onSubmit={submit}>
        <h1 id="signin-title">{ended ? "Your session ended" : "Patron console"}</h1>
        <p id="signin-help" class="muted">
          {ended
            ? "Sign in again to carry on: the page you were on is kept as it was, with anything you were writing. What you last saved or sent may not have gone through: check it, and send it again."
            : "Sign in with the deployment's admin key. The session lasts 12 hours or until you sign out."}
        </p>
        <label for="admin-key">Admin key</label>
        <input
          id="admin-key"
          ref={field}
          type="password"
          autocomplete="current-password"
          required
          value={key}
          aria-invalid={problem ? "true" : undefined}
          // Read with the field, where the focus is: a refusal's message, then why to sign in (over a kept
          // page, "Your session ended" and what is kept).
          aria-describedby={[problem ? "signin-problem" : "", ended ? "signin-title" : "", "signin-help"]
            .filter(Boolean)
            .join(" ")}
          onInput={(event) => setKey((event.target as HTMLInputElement).value)}
        />
        {problem && (
          <p id="signin-problem" class="problem" role="alert">
            {problem}
          </p>
        )}
        <label for="user-name">Your name (optional)</label>
        <input
          id="user-name"
          autocomplete="name"
          maxLength={200}
          value={name}
          aria-describedby="user-name-hint"
          onInput={(event) => setName((event.target as HTMLInputElement).value)}
        />
        <small id="user-name-hint" class="muted">
          Shown as who made each rule change in its history; without it, “admin”.
        </small>
        <button type="submit" class="primary" aria-disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function Shell() {
  const { path } = useLocation();
  async function signOut() {
    try {
      await api("DELETE", "/v1/admin/session");
    } finally {
      // Signing out leaves nothing behind: the pages go with the session.
      sessionEnded.value = false;
      signedIn.value = false;
    }
  }
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Patron</span>
        <nav aria-label="Console">
          <ul>
            {links.map((link) => (
              <li key={link.href}>
                <a href={link.href} aria-current={isCurrent(path, link.href) ? "page" : undefined}>
                  {link.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {userName.value && <span class="muted small">{userName.value}</span>}
        <button type="button" class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Router>
          <Route path="/console" component={OverviewPage} />
          <Route path="/console/customers" component={CustomersPage} />
          <Route path="/console/customers/:id" component={CustomerPage} />
          <Route path="/console/rules" component={RulesPage} />
          <Route path="/console/rules/:id" component={RuleEditPage} />
          <Route path="/console/experiments" component={ExperimentsPage} />
          <Route path="/console/models" component={ModelsPage} />
          <Route default component={NotFound} />
        </Router>
      </main>
    </>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        There is no console page here. Go to the <a href="/console">Overview</a>.
      </p>
    </section>
  );
}

function App() {
  // Why the session could not be checked (Patron down or failing), or null: only a 401 means signed out.
  const [checkFailed, setCheckFailed] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    // The page says when the browser sent no session cookie: then there is no session to check.
    if (document.documentElement.hasAttribute("data-signed-out")) {
      signedIn.value = false;
      return;
    }
    // A failed check's message and button stay while it is asked again (the button keeps the focus).
    api<Session>("GET", "/v1/admin/session").then(
      (session) => startSession(session),
      (problem: unknown) => {
        if (problem instanceof ApiProblem && problem.status === 401) signedIn.value = false;
        else setCheckFailed(problem instanceof ApiProblem ? problem.message : "The console could not start.");
      },
    );
  }, [attempt]);
  if (signedIn.value === null)
    return (
      <main id="main" class="signin">
        {checkFailed ? (
          <div class="card" role="alert">
            <h1>Patron console</h1>
            <p>Whether you are signed in could not be checked: {checkFailed}</p>
            <button type="button" class="primary" onClick={() => setAttempt((n) => n + 1)}>
              Try again
            </button>
          </div>
        ) : (
          <p class="muted" role="status">
            Loading…
          </p>
        )}
      </main>
    );
  // A session that ended under an open page keeps the page mounted (its state with it) but hidden, so
  // nothing of it shows to whoever comes to the screen, until someone signs in again.
  const held = signedIn.value === false && sessionEnded.value;
  return (
    <LocationProvider>
      {held && <SignIn ended />}
      {signedIn.value || held ? (
        <div class="shell" hidden={held}>
          <Shell />
        </div>
      ) : (
        <SignIn />
      )}
    </LocationProvider>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
