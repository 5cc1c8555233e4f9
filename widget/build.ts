/// <reference types="node" />
// Builds the storefront widget into one minified IIFE at dist/public/widget/v1.js, its optional modules
// (dist/public/widget/v1-debug.js, v1-cart.js), the shelf's stylesheet at dist/public/widget/v1-shelf.css,
// the page's space-reserving stylesheet at dist/public/widget/v1.css, and copies the demo
// storefront to dist/public/demo/. dist/public is the Worker's static-assets folder (wrangler.toml [assets]).
//   --no-demo      leave the demo storefront out (the deploy build: `npm run deploy`)
//   --out <dir>    build into another folder (tests)
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin, transform } from "esbuild";
import { minify } from "terser";

const root = path.resolve(import.meta.dirname, "..");
const { values: flags } = parseArgs({
  options: { "no-demo": { type: "boolean", default: false }, out: { type: "string" } },
});
const withDemo = !flags["no-demo"];
const publicDir = path.resolve(root, flags.out ?? "dist/public");

/** Writes a stylesheet minified. */
async function minifyCss(from: string, to: string): Promise<void> {
  const { code } = await transform(await readFile(path.join(root, from), "utf8"), { loader: "css", minify: true });
  // esbuild keeps the optional spaces in `var(--a, b)` and `font: 1rem / 1.4`; drop them.
  await writeFile(path.join(publicDir, to), code.trim().replace(/, /g, ",").replace(/ \/ /g, "/"));
}

// `/widget/v1.js` is a versioned URL: breaking changes ship as v2.js, so v1 can be cached for a day
// and served stale for a week while it revalidates. Any CDN or page may load it, hence the open CORS.
const headers = `/widget/*
  Cache-Control: public, max-age=86400, stale-while-revalidate=604800
  Access-Control-Allow-Origin: *
  Cross-Origin-Resource-Policy: cross-origin
  X-Content-Type-Options: nosniff
${
  withDemo
    ? `
/demo/*
  Cache-Control: public, max-age=0, must-revalidate
`
    : ""
}`;

// Property names only ever read inside the bundle, so one letter each will do: Preact's internal names
// (__k, __e, ...), a vnode's and a component's props, state and context, and its class-component API,
// which the widget's function components never use and no code outside the bundle can reach; and the
// names of index.tsx's Mount and shelf.tsx's props that neither the API's JSON, the DOM (a dataset's
// keys included), the page's hooks nor the optional modules use (together about 150 bytes gzip). The
// optional modules only call v1.js's `h`, never read a vnode.
const bundleOnlyProps = new RegExp(
  `^(__[A-Za-z]?|props|state|context|anonymous|level|query|skip|asked|shelf|host|root|emit|${[
    "getDerivedStateFromProps",
    "getDerivedStateFromError",
    "getSnapshotBeforeUpdate",
    "getChildContext",
    "componentWillMount",
    "componentDidMount",
    "componentWillReceiveProps",
    "shouldComponentUpdate",
    "componentWillUpdate",
    "componentDidUpdate",
    "componentWillUnmount",
    "componentDidCatch",
    "contextType",
    "setState",
    "forceUpdate",
    "debounceRendering",
  ].join("|")})$`,
);

/**
 * Cuts out of Preact what the widget never uses. Nothing outside the bundle can reach it: v1.js exports no
 * component, and the optional modules only call `h` for HTML elements. Each cut must match as often as
 * expected, so a Preact upgrade that changes one fails the build rather than shipping it silently.
 * - setState() and forceUpdate(): the widget's function components are stateless (index.tsx renders them
 *   again when the data changes), so nothing calls them; with them Preact's render queue goes too (about
 *   290 bytes gzip). `0&&function…`: the minifiers drop the dead function and what only it used.
 * - SVG and MathML: the shelf draws HTML elements only, so every element is created in the HTML namespace:
 *   the choice of namespace by tag, SVG's attribute renames and the way back to HTML out of a
 *   <foreignObject> or a MathML text element go (120 bytes gzip when measured).
 * - Suspense during hydration: when a component throws a promise while the DOM is hydrated, Preact keeps
 *   the server's nodes between `$s` comment markers. The widget never hydrates (it renders into its own
 *   empty shadow root) and never suspends (no lazy component), so a thrown promise is an error like any
 *   other, which paint's try/catch takes; the marker walk goes with it (174 bytes gzip when measured).
 * - What no element of the shelf or of v1-cart.js's button uses: the style prop (the shelf's styles are
 *   v1-shelf.css, never a style attribute, so a strict CSP needs no 'unsafe-inline'), capture-phase
 *   handlers (onClickCapture), form fields' value and checked, <template>, dangerouslySetInnerHTML, and the
 *   properties Preact sets as attributes for elements the shelf never draws (list, form, download, rowSpan,
 *   colSpan, popover). And Preact's option hooks (options.vnode, diffed, unmount …), which only devtools
 *   and preact/hooks set: nothing in the bundle does, and nothing outside it can reach them (494 bytes gzip
 *   together when measured).
 */
/** A RegExp matching `text` as it is, every time. */
function literally(text: string): RegExp {
  return new RegExp(text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&"), "g");
}

const preactCuts: { cut: RegExp; by: string; times: number }[] = [
  { cut: /\.prototype\.(setState|forceUpdate)=function/g, by: ".prototype.$1=0&&function", times: 2 },
  {
    cut: /"svg"==(\w)\?(\w)="http:\/\/www\.w3\.org\/2000\/svg":"math"==\1\?\2="http:\/\/www\.w3\.org\/1998\/Math\/MathML":/g,
    by: "",
    times: 1,
  },
  {
    cut: /if\("http:\/\/www\.w3\.org\/2000\/svg"==\w\)\w=\w\.replace\(\/xlink\(H\|:h\)\/,"h"\)\.replace\(\/sName\$\/,"s"\);else /g,
    by: "",
    times: 1,
  },
  {
    cut: /\("foreignObject"==\w\|\|"http:\/\/www\.w3\.org\/1998\/Math\/MathML"==\w&&\w\.test\(\w\)\)/g,
    by: "0",
    times: 1,
  },
  {
    cut: /if\((\w)&&\1\.then\)\{if\(\w\.__u\|=128\|\w,\w\)\{[\s\S]*?\}else (\w&&\w\.some\(\w\));else /g,
    by: "$2;else ",
    times: 1,
  },
  // The style prop: the shelf never sets one (its styles are v1-shelf.css: no style attribute, for CSP).
  {
    cut: /if\("style"==(\w)\)if\("string"==typeof \w\)\w\.style\.cssText=\w;else\{[\s\S]*?\}else if\("o"==\1\[0\]/g,
    by: 'if("o"==$1[0]',
    times: 1,
  },
  // Preact's option hooks (vnode, diffed, unmount …): for devtools and preact/hooks, which the widget never loads.
  ...[
    ",(s=n.__b)&&s(r)",
    "n.unmount&&n.unmount(t),",
    "H=n.__r,",
    "H&&H(r),",
    "n.__c&&n.__c(r,t),",
    "n.__&&n.__(t,r),",
    "n.__m&&n.__m(r,o),",
  ].map((hook) => ({ cut: literally(hook), by: "", times: 1 })),
  { cut: literally("return!o&&n.vnode&&n.vnode(e),e}"), by: "return e}", times: 1 },
  { cut: literally("return(s=n.diffed)&&s(r),l}"), by: "return l}", times: 1 },
  { cut: literally("u(n.event?n.event(r):r)"), by: "u(r)", times: 1 },
  // Capture-phase handlers (onClickCapture): the shelf's handlers all listen in the bubbling phase.
  { cut: literally('f=t!=(t=t.replace(l,"$1")),'), by: "", times: 1 },
  // Form fields, <template> and dangerouslySetInnerHTML: the shelf has none and sets no markup as a string.
  {
    cut: literally(
      '"dangerouslySetInnerHTML"==s?y=k:"children"==s||s in x||"value"==s&&"defaultValue"in x||"checked"==s&&"defaultChecked"in x||',
    ),
    by: '"children"==s||s in x||',
    times: 1,
  },
  {
    cut: literally('"children"==s?_=k:"dangerouslySetInnerHTML"==s?h=k:"value"==s?b=k:"checked"==s?m=k:'),
    by: '"children"==s?_=k:',
    times: 1,
  },
  {
    cut: /h\?\(l\|\|y&&\(h\.__html==y\.__html\|\|h\.__html==t\.innerHTML\)\|\|\(t\.innerHTML=h\.__html\),r\.__k=\[\]\):\(y&&\(t\.textContent=""\),0&&\(f="http:\/\/www\.w3\.org\/1999\/xhtml"\),([^;]*?o&&o\.some\(g\))\),l&&"textarea"!=C\|\|\([^}]*?N\(t,s,m,\$\[s\],f\)\)\}/g,
    by: "$1}",
    times: 1,
  },
  {
    cut: literally('a="template"==C&&t.content||t,o="textarea"==C&&null!=x.defaultValue?null:o&&'),
    by: "a=t,o=o&&",
    times: 1,
  },
  // Properties set as attributes that no element of the shelf has (list, form, download, rowSpan, colSpan, popover).
  {
    cut: literally(
      '"list"!=t&&"form"!=t&&"tabIndex"!=t&&"download"!=t&&"rowSpan"!=t&&"colSpan"!=t&&"role"!=t&&"popover"!=t',
    ),
    by: '"tabIndex"!=t&&"role"!=t',
    times: 1,
  },
  { cut: literally('"popover"==t&&1==r?"":r'), by: "r", times: 1 },
];
const withoutUnusedPreact: Plugin = {
  name: "preact-without-unused-parts",
  setup(builder) {
    builder.onLoad({ filter: /[\\/]preact[\\/]dist[\\/]preact\.mjs$/ }, async (args) => {
      let source = await readFile(args.path, "utf8");
      for (const { cut, by, times } of preactCuts) {
        if (source.match(cut)?.length !== times) throw new Error(`${args.path}: ${cut} not found ${times} time(s)`);
        source = source.replace(cut, by);
      }
      return { contents: source, loader: "js" };
    });
  },
};

await rm(path.join(publicDir, "widget"), { recursive: true, force: true });
await rm(path.join(publicDir, "demo"), { recursive: true, force: true });
await mkdir(publicDir, { recursive: true });

await build({
  entryPoints: [path.join(root, "widget/storefront/index.tsx")],
  outfile: path.join(publicDir, "widget/v1.js"),
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  mangleProps: bundleOnlyProps,
  plugins: [withoutUnusedPreact],
  logLevel: "warning",
});
// esbuild bundles and minifies; a second, two-pass terser compression takes about 180 more bytes (gzip)
// off the bundle every storefront page downloads (8,018 -> 7,835 B when measured). Hoisting function
// declarations (hoist_funs) took 9 bytes off once (6,995 -> 6,986 B) and now adds 6 (7,001 against 6,995:
// gzip's matches move with every change); terser's "unsafe" options take off a few more, not worth
// their assumptions.
const bundlePath = path.join(publicDir, "widget/v1.js");
const compressed = await minify(await readFile(bundlePath, "utf8"), {
  ecma: 2020,
  compress: { passes: 2 },
  toplevel: true,
});
await writeFile(bundlePath, compressed.code as string);

// The optional parts: ES modules next to v1.js that v1.js imports the first time a page uses them
// (docs/embedding.md): v1-debug.js explains a fallback for data-debug, v1-cart.js draws the
// "Add to cart" buttons for an addToCart hook.
await build({
  entryPoints: { debug: "widget/storefront/debug.ts", cart: "widget/storefront/cart.ts" },
  absWorkingDir: root,
  outdir: path.join(publicDir, "widget"),
  entryNames: "v1-[name]",
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  legalComments: "none",
  logLevel: "warning",
});

// The shelf's stylesheet, linked in each shelf's shadow root by v1.js, and the page's reservation
// stylesheet, linked in its <head> (docs/embedding.md).
await minifyCss("widget/storefront/styles.css", "widget/v1-shelf.css");
await minifyCss("widget/storefront/reserve.css", "widget/v1.css");
if (withDemo) await cp(path.join(root, "widget/demo"), path.join(publicDir, "demo"), { recursive: true });
await writeFile(path.join(publicDir, "_headers"), headers);

const bytes = Buffer.byteLength(compressed.code as string);
const where = path.relative(root, publicDir) || ".";
console.log(
  `built ${where}/widget/v1.js (${bytes} bytes minified)${withDemo ? ` and ${where}/demo/` : "; no demo storefront (--no-demo)"}`,
);
