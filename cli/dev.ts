// `npm run dev`: the plain `wrangler dev`, with its inspector and file watching, for debugging. It
// listens on PORT as `npm start` does (8787 when unset), and loads keep-alive-preload.ts so its dev
// server keeps idle connections open as npm start's does. A launcher rather than `--port ${PORT}` in
// package.json: npm runs scripts with cmd.exe on Windows, which would pass that text on as it is.
import { spawn } from "node:child_process";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const port = Number(process.env.PORT ?? 8787);
if (!Number.isInteger(port) || port < 1 || port > 65_535) {
  console.error(
    `PORT must be a port number from 1 to 65535, got "${process.env.PORT}": for example PORT=8788 npm run dev`,
  );
  process.exit(1);
}
const wrangler = path.join(root, "node_modules/wrangler/bin/wrangler.js");
const args = ["--import", "tsx", "--import", "./cli/keep-alive-preload.ts", wrangler, "dev"];
const child = spawn(
  process.execPath,
  [...args, "--ip", "127.0.0.1", "--port", String(port), ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: "inherit",
  },
);
// Ctrl-C reaches wrangler too (the same process group); this process ends as it does.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal === "SIGINT" ? 130 : 143)));
