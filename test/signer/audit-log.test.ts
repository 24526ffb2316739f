// The audit feed's numbering and durability on a real file: numbers reserved in durable blocks are never
// handed out again after a crash, a durable append is in the file when it resolves, and a line torn by a
// crash cannot swallow the next entry.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog } from "../../signer/server/audit-log.js";
import { tempDir } from "../helpers/tmp.js";

const work = tempDir("vigil-audit-log-");
const entry = (n: number) => ({
  clientId: "c",
  pubkey: "0x" + "aa".repeat(48),
  type: n % 2 === 0 ? "ATTESTATION" : "RANDAO_REVEAL",
  slot: String(n),
  sourceEpoch: null,
  targetEpoch: null,
  signingRoot: "0x" + "bb".repeat(32),
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
});
