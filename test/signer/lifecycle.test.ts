// Start and stop: close() finishes and commits in-flight requests; `vigil signer start --embedded` creates a
// token, keys and config under its data dir, reuses them next time, and stops cleanly on SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSlashingDb } from "../../slashing-db/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, GVR, http, interopPubkey, sqliteFile, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const KEYS = 8;
const work = tempDir("vigil-signer-life-");
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/cli/main.js");
let token: TestToken;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-life", KEYS);
}, 120_000);
afterAll(() => token?.destroy());

describe("graceful close", () => {
  it("every request answered 200 before or during close() is in the database afterwards", async () => {
    const config = testConfig(token, path.join(work, "close"), { genesisValidatorsRoot: GVR, logLevel: "warn" });
    const { signer } = await start(config);
    let firstSigned!: () => void;
    const someSigned = new Promise<void>((r) => (firstSigned = r));
    const sends = Array.from({ length: 200 }, async (_, i) => {
      const body = attestationBody(Math.floor(i / KEYS), Math.floor(i / KEYS) + 1);
      const res = await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(i % KEYS)}`, { body }).catch(() => ({ status: 0 }) as { status: number });
      if (res.status === 200) firstSigned();
      return res;
    });
    await someSigned; // close in the middle of the burst
    await signer.close();
    const replies = await Promise.all(sends);
    const ok = replies.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThan(0);
    // Only "signed", "refused because closing" (503) or a connection closed before the request was read.
    expect(replies.every((r) => [0, 200, 503].includes(r.status))).toBe(true);
    const db = openSlashingDb(sqliteFile(config));
    try {
      const recorded = db.exportInterchange().data.reduce((n, v) => n + v.signed_attestations.length, 0);
      expect(recorded).toBeGreaterThanOrEqual(ok);
    } finally {
      db.close();
    }
  });

  it("refuses to start on a database pinned to another network", async () => {
    const config = testConfig(token, path.join(work, "close"), { genesisValidatorsRoot: `0x${"01".repeat(32)}`, logLevel: "warn" });
    await expect(start(config)).rejects.toMatchObject({ code: "GENESIS_VALIDATORS_ROOT_MISMATCH" });
  });
});

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; stderr: () => string; ready: Promise<string> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stdout!.resume();
  const ready = new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /ready: \d+ key\(s\) on (\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  return { child, stderr: () => err, ready };
}

const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

describe("vigil signer start --embedded", () => {
  it("creates token, PIN, keys and config on the first run, reuses them on the next, stops on SIGTERM", async () => {
    const dataDir = path.join(work, "embedded");
    const first = runCli(["signer", "start", "--embedded", "--data-dir", dataDir, "--network", "minimal-devnet", "--keys", "3", "--port", "0"]);
    const url = await first.ready;
    const keys = (await http(`${url}/api/v1/eth2/publicKeys`)).json() as string[];
    expect(keys).toHaveLength(3);
    expect((await http(`${url}/upcheck`)).text).toBe("OK");
    expect(first.stderr()).toContain('created SoftHSM2 token "vigil-embedded"');
    expect(first.stderr()).toContain("Lighthouse");
    for (const f of ["softhsm/user.pin", "softhsm/so.pin", "softhsm/softhsm2.conf", "signer.json", "admin.token", "slashing-protection.sqlite"]) {
      expect(fs.statSync(path.join(dataDir, f)).mode & 0o777, f).toBe(0o600);
    }
    const pin = fs.readFileSync(path.join(dataDir, "softhsm/user.pin"), "utf8").trim();
    first.child.kill("SIGTERM");
    expect(await exited(first.child)).toBe(0);
    expect(first.stderr()).not.toContain(pin);

    const second = runCli(["signer", "start", "--config", path.join(dataDir, "signer.json"), "--port", "0"]);
    const url2 = await second.ready;
    expect(((await http(`${url2}/api/v1/eth2/publicKeys`)).json() as string[]).sort()).toEqual(keys.sort());
    expect(second.stderr()).not.toContain("generated");
    second.child.kill("SIGINT");
    expect(await exited(second.child)).toBe(0);
  }, 60_000);

  it("a bad config exits with the invalid-input code, naming the field", async () => {
    const file = path.join(work, "bad.json");
    fs.writeFileSync(file, JSON.stringify({ network: "mainnet", listen: { port: "x" }, hsm: { module: "/x.so", tokenLabel: "t", pin: { env: "P" } } }));
    const run = runCli(["signer", "start", "--config", file]);
    run.ready.catch(() => {});
    expect(await exited(run.child)).toBe(3);
    expect(run.stderr()).toContain("listen.port");
  });
});
