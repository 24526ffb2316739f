// --log-format and --log-timestamp through the real binary (dist/: build first), for both daemons: JSON lines
// by default with pid, hostname and service on the first line already; ISO 8601 timestamps that parse; pretty
// text for a terminal that is not JSON; and the last line before a SIGTERM exit still written in every format.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestToken } from "../helpers/softhsm.js";
import { CLI, writeSignerConfig } from "../helpers/signer-process.js";
import { tempDir } from "../helpers/tmp.js";
import { deadEndpointsWatchdogConfig } from "../helpers/watchdog-config.js";
import { tokenWithInteropKeys } from "../signer/harness.js";

const work = tempDir("vigil-log-options-");
let token: TestToken;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-log-options", 1);
}, 120_000);
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  token?.destroy();
});

/** Runs the daemon with stdout to a file until `readyText` is in it, then SIGTERM; resolves with what it wrote. */
async function runUntil(args: string[], outFile: string, readyText: string): Promise<{ out: string; pid: number; code: number | null }> {
  const fd = fs.openSync(outFile, "w");
  const child = spawn(process.execPath, [CLI, ...args], { env: process.env, stdio: ["ignore", fd, "pipe"] });
  fs.closeSync(fd);
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!fs.readFileSync(outFile, "utf8").includes(readyText)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${args.join(" ")}: no "${readyText}" (stderr: ${stderr})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGTERM");
  const code = await exited;
  children.delete(child);
  return { out: fs.readFileSync(outFile, "utf8"), pid: child.pid!, code };
}

const jsonLines = (out: string) =>
  out
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

function signerArgs(name: string, ...extra: string[]): string[] {
  const config = writeSignerConfig(token, path.join(work, name), path.join(work, `${name}.json`), { logLevel: "info" });
  return ["signer", "start", "--config", config, ...extra];
}

function watchdogArgs(name: string, ...extra: string[]): string[] {
  const dir = path.join(work, name);
  const config = deadEndpointsWatchdogConfig(dir, { metrics: { enabled: false }, log: { level: "info" } });
  const file = path.join(dir, "watchdog.json");
  fs.writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return ["watchdog", "start", "--config", file, ...extra];
}

const daemons = [
  { service: "vigil-signer", args: signerArgs, ready: "signer ready", last: "signer stopped" },
  { service: "vigil-watchdog", args: watchdogArgs, ready: "watchdog started", last: "watchdog stopped" },
] as const;

describe.each(daemons)("$service logs", ({ service, args, ready, last }) => {
  it("JSON by default: pid, hostname and service from the first line on; epoch-millisecond time", async () => {
    const r = await runUntil(args(`${service}-json`), path.join(work, `${service}-json.out`), ready);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.out);
    expect(lines[0]).toMatchObject({ pid: r.pid, hostname: os.hostname(), service });
    for (const l of lines) expect(l.service).toBe(service);
    expect(typeof lines[0]!.time).toBe("number");
    expect(Math.abs((lines[0]!.time as number) - Date.now())).toBeLessThan(120_000);
    expect(lines.at(-1)!.msg).toBe(last); // written before the exit
  }, 90_000);

  it("--log-timestamp iso: the time field is ISO 8601 UTC and parses", async () => {
    const r = await runUntil(args(`${service}-iso`, "--log-timestamp", "iso"), path.join(work, `${service}-iso.out`), ready);
    const lines = jsonLines(r.out);
    expect(lines[0]).toMatchObject({ pid: r.pid, hostname: os.hostname(), service });
    for (const l of lines) {
      expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Math.abs(Date.parse(l.time as string) - Date.now())).toBeLessThan(120_000);
    }
  }, 90_000);

  it("--log-format pretty: human text (not JSON) with level, message and pid, down to the last line before the exit", async () => {
    const r = await runUntil(args(`${service}-pretty`, "--log-format", "pretty"), path.join(work, `${service}-pretty.out`), ready);
    expect(r.code).toBe(0);
    const first = r.out.split("\n")[0]!;
    expect(() => JSON.parse(first)).toThrow();
    expect(first).toMatch(new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} [^\\]]+\\] INFO \\(${r.pid} on ${os.hostname()}\\): `));
    expect(r.out).toContain(`service: "${service}"`);
    expect(r.out).toContain(ready);
    expect(
      r.out
        .trimEnd()
        .split("\n")
        .filter((l) => /^\[/.test(l))
        .at(-1),
    ).toContain(last);
  }, 90_000);

  it("refuses an unknown format with the choices", async () => {
    const child = spawn(process.execPath, [CLI, ...args(`${service}-bad`, "--log-format", "xml")], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/--log-format.*xml.*json, pretty/s);
  });
});
