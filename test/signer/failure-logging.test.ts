// Logging never blocks signing or shutdown: the real `vigil signer start` with its stdout on a device that is
// always full, on a tiny tmpfs that fills up, and on a pipe nobody reads. It keeps signing, counts the log lines
// it dropped in /metrics, and exits 0 promptly on SIGTERM. (Before: /dev/full wedged it for good — no reply,
// SIGTERM ignored — because pino's exit hook retried the failed write forever.)
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import {
  metrics,
  metricValue,
  mountTmpfs,
  spawnSigner,
  stopWithSigterm,
  unmount,
  writeSignerConfig,
  type SignerProcess,
  killLeftovers,
} from "./cli-process.js";
import { attestationBody, http, interopPubkey, tokenWithInteropKeys } from "./harness.js";

const KEYS = 2;
const work = tempDir("vigil-fail-log-");
let token: TestToken;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-fail-log", KEYS);
}, 120_000);
afterAll(() => token?.destroy());
afterEach(() => killLeftovers());

/** Requests whose (debug) log lines are large: an unknown key with a 16 KiB type string, logged with the reply. */
async function makeLogNoise(url: string, count: number): Promise<void> {
  const body = { type: "X".repeat(16_384) };
  for (let i = 0; i < count; i += 10) {
    await Promise.all(Array.from({ length: 10 }, () => http(`${url}/api/v1/eth2/sign/0x${"ee".repeat(48)}`, { body })));
  }
}

/** Signs `n` fresh attestations (epochs from `from`) and returns how many were signed. */
async function signSome(url: string, from: number, n: number): Promise<number> {
  let ok = 0;
  for (let e = from; e < from + n; e++) {
    const res = await http(`${url}/api/v1/eth2/sign/${interopPubkey(e % KEYS)}`, { body: attestationBody(e, e + 1) });
    if (res.status === 200) ok++;
  }
  return ok;
}

async function expectKeepsSigningAndStops(p: SignerProcess, noise: number): Promise<void> {
  const url = await p.ready;
  expect(await signSome(url, 0, 4)).toBe(4);
  await makeLogNoise(url, noise);
  expect((await http(`${url}/upcheck`)).text).toBe("OK");
  expect(await signSome(url, 10, 20)).toBe(20);
  const dropped = metricValue(await metrics(url), "vigil_log_lines_dropped_total");
  expect(dropped).toBeGreaterThan(0);
  const stop = await stopWithSigterm(p);
  expect(stop.signal).toBeNull();
  expect(stop.code).toBe(0);
  expect(stop.ms).toBeLessThan(10_000);
}

describe("stdout that cannot take the log", () => {
  it("/dev/full (every write ENOSPC): keeps signing, counts dropped lines, SIGTERM exits 0", async () => {
    const fd = fs.openSync("/dev/full", "w");
    const p = spawnSigner(writeSignerConfig(token, path.join(work, "full"), path.join(work, "full.json")), fd);
    fs.closeSync(fd);
    await expectKeepsSigningAndStops(p, 20);
  }, 60_000);

  it("a pipe nobody reads: keeps signing, drops beyond its buffer, SIGTERM exits 0", async () => {
    const p = spawnSigner(writeSignerConfig(token, path.join(work, "pipe"), path.join(work, "pipe.json")), "pipe");
    p.child.stdout!.pause(); // never read: the pipe fills and stays full
    await expectKeepsSigningAndStops(p, 150); // ~2.4 MiB of log lines: more than the pipe and the 1 MiB buffer
  }, 90_000);

  it("a file on a 64 KiB tmpfs that fills up: keeps signing, SIGTERM exits 0", async (ctx) => {
    const mnt = path.join(work, "logfs");
    const why = mountTmpfs(mnt, 64);
    if (why) {
      console.log(`skipped: ${why}`);
      ctx.skip();
      return;
    }
    try {
      const fd = fs.openSync(path.join(mnt, "signer.log"), "w");
      const p = spawnSigner(writeSignerConfig(token, path.join(work, "tmpfs"), path.join(work, "tmpfs.json")), fd);
      fs.closeSync(fd);
      await expectKeepsSigningAndStops(p, 20); // ~320 KiB: the filesystem fills part way through
      expect(fs.statSync(path.join(mnt, "signer.log")).size).toBeGreaterThan(0); // lines were written until it was full
    } finally {
      unmount(mnt);
    }
  }, 60_000);
});

describe("the watchdog's logger", () => {
  it("with stdout on /dev/full: logging returns at once, drops are counted, the process exits 0", async () => {
    const logModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/watchdog/log.js");
    const script = `
      const { createLogger, logLinesDropped } = await import(${JSON.stringify(logModule)});
      const log = createLogger("info");
      const started = Date.now();
      for (let i = 0; i < 2000; i++) log.info({ i }, "a line the full disk cannot take");
      await new Promise((r) => setTimeout(r, 200));
      process.stderr.write(JSON.stringify({ dropped: logLinesDropped(), ms: Date.now() - started }) + "\\n");`;
    const fd = fs.openSync("/dev/full", "w");
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", fd, "pipe"] });
    fs.closeSync(fd);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    clearTimeout(killer);
    expect(code, err).toBe(0);
    const report = JSON.parse(err.trim().split("\n").pop()!) as { dropped: number };
    expect(report.dropped).toBe(2000);
  }, 30_000);
});
