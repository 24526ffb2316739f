// The audit feed's numbering and durability on a real file: numbers reserved in durable blocks are never
// handed out again after a crash, a durable append is in the file when it resolves, and a line torn by a
// crash cannot swallow the next entry.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog, AuditLogUnavailableError } from "../../signer/server/audit-log.js";
import { tempDir } from "../helpers/tmp.js";
import { fillDisk, mountTmpfs, unmount } from "./cli-process.js";

const work = tempDir("vigil-audit-log-");
const entry = (n: number) => ({
  clientId: "c",
  pubkey: `0x${"aa".repeat(48)}`,
  type: n % 2 === 0 ? "ATTESTATION" : "RANDAO_REVEAL",
  slot: String(n),
  sourceEpoch: null,
  targetEpoch: null,
  signingRoot: `0x${"bb".repeat(32)}`,
  signature: `0x${n}`,
  at: new Date(0).toISOString(),
});
const fileLines = (dir: string) =>
  fs
    .readFileSync(path.join(dir, "signatures.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l !== "");

describe("audit log numbering and durability", () => {
  it("after a crash, numbering continues above the reserved block: a number served before is never reused", async () => {
    const dir = path.join(work, "crash");
    const a = AuditLog.open(dir, { reserveBlock: 100 });
    await a.append(entry(0), { durable: true });
    a.append(entry(1), { durable: false }); // buffered: lost in the "crash" below
    const served = await a.list(0, 10);
    expect(served.signatures.map((e) => e.seq)).toEqual([1, 2]);
    expect(fs.readFileSync(path.join(dir, "seq.reserved"), "utf8")).toBe("100\n");
    // A crash: `a` is never closed, its buffered entry never written.
    const b = AuditLog.open(dir, { reserveBlock: 100 });
    await b.append(entry(2), { durable: true });
    const after = await b.list(0, 10);
    expect(after.signatures.map((e) => [e.seq, e.signature])).toEqual([
      [1, "0x0"],
      [101, "0x2"],
    ]);
    // A reader whose cursor was 2 (it saw the lost entry) still sees the new one.
    expect((await b.list(2, 10)).signatures.map((e) => e.seq)).toEqual([101]);
    await b.close();
  });

  it("a durable append is in the file when it resolves; concurrent ones share writes", async () => {
    const dir = path.join(work, "durable");
    const log = AuditLog.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(entry(2 * i), { durable: true })));
    expect(fileLines(dir)).toHaveLength(50);
    await log.close();
  });

  it("a lone caller's durable appends each resolve without waiting for another append", { timeout: 10_000 }, async () => {
    const dir = path.join(work, "sequential");
    const log = AuditLog.open(dir);
    for (let i = 0; i < 20; i++) {
      await log.append(entry(2 * i), { durable: true });
      expect(fileLines(dir)).toHaveLength(i + 1);
    }
    await log.close();
  });

  it("a clean stop leaves no gap; a line torn by a crash does not swallow the next entry", async () => {
    const dir = path.join(work, "torn");
    const a = AuditLog.open(dir);
    await a.append(entry(0), { durable: true });
    await a.close();
    fs.appendFileSync(path.join(dir, "signatures.jsonl"), '{"seq":2,"clientId":"c","pub'); // cut mid-line
    const b = AuditLog.open(dir);
    await b.append(entry(2), { durable: true });
    await b.close();
    const c = AuditLog.open(dir);
    expect((await c.list(0, 10)).signatures.map((e) => [e.seq, e.signature])).toEqual([
      [1, "0x0"],
      [2, "0x2"],
    ]);
    await c.close();
    expect(fs.statSync(path.join(dir, "signatures.jsonl")).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, "seq.reserved")).mode & 0o777).toBe(0o600);
  });

  it("a durable write that fails names its cause (the database's classifier) and turns health DOWN until one succeeds", async (ctx) => {
    const mnt = path.join(work, "full");
    const why = mountTmpfs(mnt, 256);
    if (why) {
      console.log(`skipped: ${why}`);
      ctx.skip();
      return;
    }
    try {
      const dir = path.join(mnt, "audit");
      const a = AuditLog.open(dir, { reserveBlock: 100 });
      await a.append(entry(0), { durable: true });
      expect(a.health()).toEqual({ up: true });
      const filler = fillDisk(mnt);
      // The file's last page may still take a few lines; then the write fails with ENOSPC.
      let failure: unknown;
      for (let n = 1; n < 200 && failure === undefined; n++) await a.append(entry(n), { durable: true })!.catch((err: unknown) => (failure = err));
      expect(failure).toBeInstanceOf(AuditLogUnavailableError);
      expect(failure).toMatchObject({ code: "AUDIT_LOG_UNAVAILABLE", failure: "DISK_FULL" });
      expect(a.health()).toEqual({ up: false, cause: "DISK_FULL" });
      fs.rmSync(filler);
      await a.append(entry(500), { durable: true });
      expect(a.health()).toEqual({ up: true });
      await a.close();
    } finally {
      unmount(mnt);
    }
  });
});
