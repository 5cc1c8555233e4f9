// `npm start` on a port something else holds stops at once and says so, before building or seeding
// anything: else the dev server fails to listen and, if the holder is an earlier `npm start`, the demo
// would be seeded into that one.
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { expect, it, onTestFinished } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");

/** `npm start`'s script run with PORT set to `port`, until it exits. */
function start(port: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", path.join(root, "cli/start.ts")],
      { cwd: root, env: { ...process.env, PORT: port }, timeout: 60_000 },
      (_error, out, err) => resolve({ code: child.exitCode, stdout: out, stderr: err }),
    );
  });
}

it("refuses a port in use, naming it and how to choose another", async () => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const port = (holder.address() as { port: number }).port;
  const { code, stdout, stderr } = await start(String(port));
  expect(code).toBe(1);
  expect(stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
  expect(stderr).toContain(`PORT=${port + 1} npm start`);
  expect(stdout).not.toContain("Building"); // Nothing was built or started.
}, 90_000);

it("refuses a PORT that is no port number, naming the setting", async () => {
  const { code, stdout, stderr } = await start("abc");
  expect(code).toBe(1);
  expect(stderr).toContain('PORT must be a port number from 1 to 65535, got "abc": for example PORT=8788 npm start');
  expect(stdout).not.toContain("Building");
}, 90_000);
