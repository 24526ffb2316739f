import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { fillDisk, makeExt4ReadOnly, mountExt4, mountTmpfs, spawnSigner, stopWithSigterm, unmount, writeSignerConfig, killLeftovers } from "./cli-process.js";
import { attestationBody, http, interopPubkey, tokenWithInteropKeys } from "./harness.js";

const KEYS = 2;
const TRIALS = 5;
const work = tempDir("vigil-fail-stop-");
let token: TestToken;
let noMount: string | undefined;
let noExt4: string | undefined;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-fail-stop", KEYS);
  const probe = path.join(work, "probe");
  noMount = mountTmpfs(probe, 64);
  if (!noMount) unmount(probe);
  noExt4 = mountExt4(probe, path.join(work, "probe.img"), 16);
  if (!noExt4) unmount(probe);
}, 120_000);
afterAll(() => token?.destroy());
afterEach(() => killLeftovers());

async function sign(url: string, epoch: number): Promise<{ status: number; code?: string }> {
  const res = await http(`${url}/api/v1/eth2/sign/${interopPubkey(epoch % KEYS)}`, { body: attestationBody(epoch, epoch + 1) });
  return { status: res.status, ...(res.status === 200 ? {} : { code: (res.json() as { code?: string }).code }) };
}

/**
 * One trial: signer with its data on a small filesystem, a few signatures, then the disk made unwritable and
 * signing attempted until it fails closed, then SIGTERM.
 */
async function trial(
  name: string,
  fsType: "tmpfs" | "ext4",
  breakDisk: (mnt: string) => void,
): Promise<{ code: number | null; signal: string | null; stderr: string; ms: number }> {
  const mnt = path.join(work, name);
  const why = fsType === "tmpfs" ? mountTmpfs(mnt, 4096) : mountExt4(mnt, path.join(work, `${name}.img`), 16);
  if (why) throw new Error(why);
  try {
    const p = spawnSigner(writeSignerConfig(token, path.join(mnt, "data"), path.join(work, `${name}.json`), { logLevel: "warn" }), "ignore");
    const url = await p.ready;
    for (let e = 0; e < 6; e++) expect((await sign(url, e)).status).toBe(200);
    breakDisk(mnt);
    // Space the WAL already holds may still take a few commits; then signing fails closed (503). The audit feed's
    // fdatasync, after the slashing commit, may run out of room first (503 AUDIT_LOG_UNAVAILABLE, the commit
    // itself durable): that alone leaves the database closable cleanly (exit 0). Sign on until the database
    // itself cannot record (DB_WRITE_FAILED): the situation this test is about.
    let last: { status: number; code?: string } = { status: 200 };
    for (let e = 100; e < 2_000 && last.code !== "DB_WRITE_FAILED"; e++) {
      last = await sign(url, e);
      if (last.status !== 200)
        expect(last, "only the two durable writes may fail").toMatchObject({
          status: 503,
          code: expect.stringMatching(/^(DB_WRITE_FAILED|AUDIT_LOG_UNAVAILABLE)$/),
        });
    }
    expect(last).toMatchObject({ status: 503, code: "DB_WRITE_FAILED" });
    await new Promise((r) => setTimeout(r, 300)); // the checkpoint thread runs into the broken disk too
    // Another process holding the write lock (a backup, an operator's tool) keeps the last checkpoint waiting,
    // so the shutdown overlaps a checkpoint in progress; it must still end promptly and in order.
    const holder = new Database(path.join(mnt, "data", "slashing-protection.sqlite"), { fileMustExist: true });
    holder.prepare("BEGIN IMMEDIATE").run();
    const stop = await stopWithSigterm(p).finally(() => holder.close());
    return { code: stop.code, signal: stop.signal, stderr: p.stderr(), ms: stop.ms };
  } finally {
    unmount(mnt);
  }
}

describe("SIGTERM with the slashing database unwritable", () => {
  for (const [label, fsType, breakDisk] of [
    ["disk full", "tmpfs", (mnt: string) => void fillDisk(mnt)],
    ["filesystem turned read-only", "ext4", (mnt: string) => makeExt4ReadOnly(mnt)],
  ] as const) {
    it(`${label}: ${TRIALS} trials, always the documented exit code, never a V8 fatal error`, async (ctx) => {
      const why = fsType === "tmpfs" ? noMount : noExt4;
      if (why) {
        console.log(`skipped: ${why}`);
        ctx.skip();
        return;
      }
      const results = [];
      for (let i = 0; i < TRIALS; i++) results.push(await trial(`${label.replace(/\W/g, "")}-${i}`, fsType, breakDisk));
      for (const r of results) {
        expect(r.signal, r.stderr).toBeNull();
        expect(r.stderr).not.toMatch(/FATAL|Fatal error|Abort|core dumped/i);
        expect(r.code, r.stderr).toBe(EXIT_CODES.dbNotClosedCleanly);
        expect(r.stderr).toContain("[DB_NOT_CLOSED_CLEANLY]");
        expect(r.ms).toBeLessThan(15_000);
      }
    }, 180_000);
  }
});
