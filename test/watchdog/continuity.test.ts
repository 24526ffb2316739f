// Continuity when the two stacks use different signers: the history moves (EIP-3076), or, when the old
// database cannot be read, the new one's watermarks go up and the keys must be seen quiet on chain.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openSlashingDb } from "../../slashing-db/index.js";
import { ChainClock, ensureContinuity } from "../../watchdog/index.js";
import { SimBeaconNode } from "./sim/beacon-node.js";
import { SimChain } from "./sim/chain.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-wd-cont-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const GVR = `0x${"ab".repeat(32)}`;
const PK = `0x${"a1".repeat(48)}`;
const root = (b: string) => `0x${b.repeat(32)}`;
const signer = (id: string, slashingDbPath?: string) => ({
  id,
  urls: ["http://127.0.0.1:1"],
  adminTokenFile: "/dev/null",
  timeoutMs: 100,
  ...(slashingDbPath ? { slashingDbPath } : {}),
});

describe("continuity across signers", () => {
  it("same signer: nothing to move", async () => {
    const r = await ensureContinuity({
      from: signer("a"),
      to: signer("a"),
      clock: new ChainClock(0, 100, 2),
      beaconUrl: "",
      validatorIndices: [],
      knownPubkeys: [],
      quietEpochs: 2,
      probeTimeoutMs: 100,
    });
    expect(r.mode).toBe("shared-signer");
  });

  it("moves the old history (export → import): the new signer refuses what would conflict with it", async () => {
    const a = path.join(dir, "a.sqlite");
    const b = path.join(dir, "b.sqlite");
    const old = openSlashingDb(a, { genesisValidatorsRoot: GVR });
    await old.checkAndRecordAttestation(PK, 4, 5, root("11"));
    await old.checkAndRecordBlock(PK, 42, root("22"));
    old.close();
    const r = await ensureContinuity({
      from: signer("a", a),
      to: signer("b", b),
      clock: new ChainClock(0, 100, 2),
      beaconUrl: "",
      validatorIndices: [],
      knownPubkeys: [],
      quietEpochs: 2,
      probeTimeoutMs: 100,
    });
    expect(r.mode).toBe("interchange");
    const db = openSlashingDb(b);
    try {
      expect(db.judgeAttestation(PK, 4, 5, root("33")).kind).toBe("refused"); // double vote
      expect(db.judgeAttestation(PK, 3, 6, root("33")).kind).toBe("refused"); // surround
      expect(db.judgeBlock(PK, 42, root("44")).kind).toBe("refused");
      expect(db.judgeAttestation(PK, 5, 6, root("33")).kind).toBe("new");
    } finally {
      db.close();
    }
    // idempotent: a resumed failover imports again
    expect(
      (
        await ensureContinuity({
          from: signer("a", a),
          to: signer("b", b),
          clock: new ChainClock(0, 100, 2),
          beaconUrl: "",
          validatorIndices: [],
          knownPubkeys: [],
          quietEpochs: 2,
          probeTimeoutMs: 100,
        })
      ).mode,
    ).toBe("interchange");
  });

  it("old history unreadable: watermarks above the current epoch, then N quiet epochs on chain (a live epoch restarts the count)", async () => {
    const chain = new SimChain({ slotMs: 50, slotsPerEpoch: 2, validatorCount: 1, genesisTime: Math.floor(Date.now() / 1000) - 1 });
    const bn = await SimBeaconNode.start("b", chain);
    const clock = new ChainClock(chain.genesisMs, 50, 2);
    const b = path.join(dir, "b2.sqlite");
    const db0 = openSlashingDb(b, { genesisValidatorsRoot: GVR });
    db0.close();
    const startEpoch = clock.currentEpoch();
    chain.markLive("0", startEpoch + 1); // the old client still signed once after the fence
    const seen: number[] = [];
    const marks: number[] = [];
    try {
      const r = await ensureContinuity({
        from: signer("a", path.join(dir, "missing.sqlite")),
        to: signer("b", b),
        clock,
        beaconUrl: bn.url,
        validatorIndices: ["0"],
        knownPubkeys: [PK],
        quietEpochs: 2,
        probeTimeoutMs: 500,
        onLiveSeen: (e) => seen.push(e),
        onWatermarks: (e) => marks.push(e),
      });
      expect(r.mode).toBe("watermarks");
      expect(r.detail).toMatch(/unreadable/);
      expect(seen).toEqual([startEpoch + 1]);
      expect(marks[0]).toBeGreaterThanOrEqual(startEpoch);
      expect(clock.currentEpoch()).toBeGreaterThanOrEqual(startEpoch + 4); // live epoch + 2 quiet ones had to pass
      const w = r.watermarkEpoch!;
      const db = openSlashingDb(b);
      try {
        expect(db.judgeAttestation(PK, w - 1, w, root("55")).kind).toBe("refused");
        expect(db.judgeBlock(PK, (w + 1) * 2 - 1, root("66")).kind).toBe("refused");
        expect(db.judgeAttestation(PK, w, w + 1, root("55")).kind).toBe("new");
      } finally {
        db.close();
      }
      expect(fs.existsSync(path.join(dir, "missing.sqlite"))).toBe(false); // never created in its place
    } finally {
      await bn.close();
    }
  });
});
