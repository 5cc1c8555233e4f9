// `npm run bench -- profile [--size 10000] [--shards 16] [--requests 3000] [--keep DIR] [--out file]`:
// where a known shopper's repeat visit spends the worker's CPU. It loads the scale bench's generated
// customers into customer shards as `npm run bench -- shard --route` does (or reuses the base that
// bench kept in DIR/<size>-<shards>), starts the product's worker under wrangler's dev server with its
// inspector, visits 500 shoppers spread over the base twice (so every visit measured is a repeat one),
// serves `requests` shelves unprofiled (workerd's CPU per shelf, from /proc), and then as many again
// while V8's CPU profiler samples the isolate through the inspector every 50 µs, 8 requests at a time.
// Locally the Worker and its shards share that isolate, so the profile holds both sides of the shard
// call. It prints each function's share of the busy samples, itself and with what it calls, and each
// source file's, named from the bundle's module comments; and writes the raw profile (open it in
// Chrome's DevTools, Performance panel). Shares, not times: a profile says where the CPU goes, the
// scale bench what a request costs.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { signShopperToken } from "../../worker/http/shopper-token.ts";
import { freePort, testSecrets } from "../fixtures/wrangler-dev.ts";
import { accountHolderFrom, accountOf } from "./base-mix.ts";
import { descendantProcesses } from "./measure.ts";
import { parseOptions } from "./scale.bench.ts";
import { routeSize, startRouteWorker } from "./shard/route.ts";

const root = path.resolve(import.meta.dirname, "../..");
const shoppers = 500;
const connections = 8;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

/** The inspector's protocol over one WebSocket: `send` answers the command's result. */
async function inspectorSession(port: number) {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { webSocketDebuggerUrl: string }[];
  const target = targets[0];
  if (!target) throw new Error(`the inspector on port ${port} lists no isolate`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  let nextId = 1;
  const waiting = new Map<number, (message: { result?: unknown; error?: { message: string } }) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (message.id !== undefined) waiting.get(message.id)?.(message);
  });
  const send = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, (message) => {
        waiting.delete(id);
        if (message.error) reject(new Error(`${method}: ${message.error.message}`));
        else resolve(message.result as T);
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => socket.close() };
}

/** The newest bundle wrangler built for the bench worker, kept in memory (it is deleted on dispose). */
function latestBundle(): string {
  const tmp = path.join(root, ".wrangler/tmp");
  const bundles = readdirSync(tmp)
    .map((dir) => path.join(tmp, dir, "route-worker.js"))
    .filter((file) => {
      try {
        return statSync(file).isFile();
      } catch {
        return false;
      }
    })
    .sort((left, right) => statSync(right).mtimeMs - statSync(left).mtimeMs);
  if (!bundles[0]) throw new Error(`no route-worker.js bundle under ${tmp}`);
  return readFileSync(bundles[0], "utf8");
}

/** Line (0-based) → the source file the bundler took it from, by its `// path/to/file.ts` comments. */
function sourceFileOf(bundle: string): (line: number) => string {
  const markers: { line: number; file: string }[] = [];
  bundle.split("\n").forEach((text, line) => {
    const match = /^\/\/ ((?:worker|db|node_modules|tests)\/\S+\.[cm]?[jt]s)$/.exec(text);
    if (match) markers.push({ line, file: match[1] as string });
  });
  return (line) => {
    let low = 0;
    let high = markers.length - 1;
    let found = "(bundle)";
    while (low <= high) {
      const middle = (low + high) >> 1;
      const marker = markers[middle] as { line: number; file: string };
      if (marker.line <= line) {
        found = marker.file;
        low = middle + 1;
      } else high = middle - 1;
    }
    return found;
  };
}

/** Self and inclusive sample counts per function, self per source file; idle samples apart. */
export function summarizeProfile(profile: CpuProfile, fileOf: (line: number) => string) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const label = (node: ProfileNode) => {
    const name = node.callFrame.functionName || "(anonymous)";
    if (!node.callFrame.url) return { name: `${name} (native)`, file: "(native)" };
    const file = fileOf(node.callFrame.lineNumber);
    return { name: `${name} ${file}`, file };
  };
  const samplesAt = new Map<number, number>();
  for (const id of profile.samples) samplesAt.set(id, (samplesAt.get(id) ?? 0) + 1);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const files = new Map<string, number>();
  let idle = 0;
  const add = (map: Map<string, number>, key: string, count: number) => map.set(key, (map.get(key) ?? 0) + count);
  for (const [id, count] of samplesAt) {
    const node = byId.get(id) as ProfileNode;
    if (node.callFrame.functionName === "(idle)") {
      idle += count;
      continue;
    }
    const { name, file } = label(node);
    add(self, name, count);
    add(files, file.startsWith("node_modules/") ? file.split("/").slice(0, 2).join("/") : file, count);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const ancestor = label(byId.get(at) as ProfileNode).name;
      if (seen.has(ancestor)) continue;
      seen.add(ancestor);
      add(inclusive, ancestor, count);
    }
  }
  return { samples: profile.samples.length, busy: profile.samples.length - idle, self, inclusive, files };
}

function printTop(title: string, counts: Map<string, number>, busy: number, limit: number) {
  console.log(`\n${title}`);
  const rows = [...counts].sort((left, right) => right[1] - left[1]).slice(0, limit);
  for (const [name, count] of rows) console.log(`${((100 * count) / busy).toFixed(1).padStart(6)}%  ${name}`);
}

export default async function profileBench(args: string[]) {
  const value = (name: string) => {
    const index = args.indexOf(`--${name}`);
    return index >= 0 ? args[index + 1] : undefined;
  };
  const size = Number(value("size") ?? 10_000);
  const shards = Number(value("shards") ?? 16);
  const requests = Number(value("requests") ?? 3000);
  const keep = value("keep");
  const out = path.resolve(value("out") ?? path.join(root, ".wrangler/bench/profile.cpuprofile"));
  const baseRoot = keep ? path.resolve(keep) : mkdtempSync(path.join(tmpdir(), "patron-profile-"));
  try {
    // Loads the base unless `keep` already holds it (the shard route bench's own loading).
    await routeSize(size, shards, { ...parseOptions([], "profile"), keep: baseRoot, loadOnly: true });
    const inspectorPort = await freePort();
    const { worker, url } = await startRouteWorker(path.join(baseRoot, `${size}-${shards}`), shards, inspectorPort);
    try {
      const bundle = latestBundle();
      const now = new Date();
      const tokens = await Promise.all(
        Array.from({ length: shoppers }, (_, k) =>
          signShopperToken(
            accountOf(accountHolderFrom(Math.floor((k * size) / shoppers))),
            testSecrets.SHOPPER_TOKEN_SECRET,
            3600,
            now,
          ),
        ),
      );
      const shelf = async (token: string) => {
        const response = await fetch(`${url}/v1/recommendations?limit=8&categories=4`, {
          headers: { Authorization: `Bearer ${token}` },
        });
        const body = (await response.json()) as { data?: { customerKnown?: boolean } };
        if (!response.ok || body.data?.customerKnown !== true)
          throw new Error(`a shelf answered ${response.status} ${JSON.stringify(body).slice(0, 200)}`);
      };
      const serve = async (count: number) => {
        for (let i = 0; i < count; i += connections)
          await Promise.all(
            Array.from({ length: Math.min(connections, count - i) }, (_, k) => shelf(tokens[(i + k) % shoppers]!)),
          );
      };
      await serve(2 * shoppers);
      // The same count unprofiled first: what the shelves cost the workerd processes, by /proc.
      const before = descendantProcesses("workerd");
      await serve(requests);
      const after = descendantProcesses("workerd");
      const cpuMs = before && after ? ((after.cpuSeconds - before.cpuSeconds) * 1000) / requests : null;
      const inspector = await inspectorSession(inspectorPort);
      await inspector.send("Profiler.enable");
      await inspector.send("Profiler.setSamplingInterval", { interval: 50 });
      await inspector.send("Profiler.start");
      const started = performance.now();
      await serve(requests);
      const seconds = (performance.now() - started) / 1000;
      const { profile } = await inspector.send<{ profile: CpuProfile }>("Profiler.stop");
      inspector.close();
      mkdirSync(path.dirname(out), { recursive: true });
      writeFileSync(out, JSON.stringify(profile));
      const summary = summarizeProfile(profile, sourceFileOf(bundle));
      console.log(
        `${requests} repeat shelves of ${shoppers} known shoppers (${size} customers in ${shards} shards): ` +
          `${cpuMs === null ? "workerd's CPU not readable here" : `${cpuMs.toFixed(2)} ms of workerd CPU per shelf unprofiled`}; ` +
          `profiled in ${seconds.toFixed(1)} s, ${summary.samples} samples, ` +
          `${((100 * (summary.samples - summary.busy)) / summary.samples).toFixed(1)}% idle. Shares of the busy samples:`,
      );
      printTop("by function, itself", summary.self, summary.busy, 30);
      printTop("by function, with what it calls", summary.inclusive, summary.busy, 40);
      printTop("by source file, itself", summary.files, summary.busy, 25);
      console.log(`\nraw profile: ${out}`);
    } finally {
      await worker.dispose();
    }
  } finally {
    if (!keep) rmSync(baseRoot, { recursive: true, force: true });
  }
}
