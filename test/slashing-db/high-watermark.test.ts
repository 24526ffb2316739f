/**
 * The high watermark on both backends: set for every key or for one, it refuses a block at or above its slot and
 * an attestation at or above its epoch (also for a key the database has never seen), checked in the same
 * transaction as the record; removed, the same messages are signed. What the signer's GET shows (the all-keys one)
 * is read from the database, so a CLI write is seen at once.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { SlashingProtectionError } from "../../slashing-db/index.js";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";
import { PgHistory } from "../../slashing-db/postgres/history.js";
import { openProtection } from "../helpers/backend-handle.js";
import { testBackends } from "../helpers/backends.js";

const GVR = `0x${"55".repeat(32)}`;
const PK1 = `0x${"b1".repeat(48)}`;
const PK2 = `0x${"b2".repeat(48)}`;
const NEVER_SEEN = `0x${"b3".repeat(48)}`;
const root = (n: number) => `0x${n.toString(16).padStart(64, "0")}`;

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SlashingProtectionError);
  return (err as SlashingProtectionError).refusal;
}

describe.each(testBackends())("high watermark ($name)", (backend) => {
  it("for every key: refuses at or above it, allows below, and allows again once removed", async () => {
    const location = await backend.freshLocation();
    const h = await backend.open(GVR, location);
    const admin = await h.admin();
    const signer = await openProtection(location);
    try {
      await h.block(PK1, 10, root(10));
      await h.att(PK1, 1, 2, root(12));
      expect(await signer.highWatermark()).toBeNull();
      expect(await admin.setHighWatermark({ slot: 100n, epoch: 10n })).toBe(0);
      expect(await signer.highWatermark()).toEqual({ slot: 100n, epoch: 10n });

      expect(await h.block(PK1, 99, root(99))).toBe("recorded");
      expect(await refusal(h.block(PK1, 100, root(100)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
      expect(await refusal(h.block(NEVER_SEEN, 150, root(150)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
      expect(await h.att(PK1, 8, 9, root(89))).toBe("recorded");
      expect(await refusal(h.att(PK1, 9, 10, root(910)))).toBe("ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK");
      expect(await refusal(h.att(PK2, 3, 11, root(311)))).toBe("ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK");
      // Through the signer's own protection (the SQLite worker thread / the PostgreSQL group commit) too.
      const pk = Buffer.from(PK1.slice(2), "hex");
      expect(await refusal(signer.checkAndRecord({ kind: "block", pubkey: pk, slot: 120n, signingRoot: Buffer.alloc(32, 7) }))).toBe(
        "BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK",
      );

      expect(await admin.removeHighWatermark({})).toBe(1);
      expect(await signer.highWatermark()).toBeNull();
      expect(await h.block(PK1, 100, root(100))).toBe("recorded");
      expect(await signer.checkAndRecord({ kind: "block", pubkey: pk, slot: 120n, signingRoot: Buffer.alloc(32, 7) })).toBe("recorded");
      expect(await h.att(PK1, 9, 10, root(910))).toBe("recorded");
      expect(await h.block(NEVER_SEEN, 150, root(150))).toBe("recorded");
    } finally {
      await signer.close();
      await admin.close();
      await h.close();
    }
  });

  it("cannot race: set while checks stream in, no check judged before it is recorded after it", async () => {
    const location = await backend.freshLocation();
    const h = await backend.open(GVR, location);
    const admin = await h.admin();
    const signer = await openProtection(location);
    const keys = Array.from({ length: 8 }, (_, i) => Buffer.alloc(48, 0xc0 + i));
    const check = (pubkey: Buffer, slot: bigint) => signer.checkAndRecord({ kind: "block", pubkey, slot, signingRoot: Buffer.alloc(32, 2) });
    const recordedFrom = async (slot: bigint) => (await h.rows()).reduce((n, v) => n + v.blocks.filter((b) => b.slot >= slot).length, 0);
    try {
      for (const k of keys) await check(k, 0n); // every key registered: the setter locks them all
      // One loop per key, each with a check always in flight (as validator clients do), until told to stop.
      let stop = false;
      const outcomes: unknown[] = [];
      const loops = keys.map(async (k) => {
        for (let slot = 1n; !stop; slot++) outcomes.push(await check(k, slot).catch((e: unknown) => e));
      });
      await new Promise((r) => setTimeout(r, 150));
      await admin.setHighWatermark({ slot: 1n });
      const atSet = await recordedFrom(1n);
      await new Promise((r) => setTimeout(r, 100)); // checks keep coming after it: all refused
      stop = true;
      await Promise.all(loops);
      expect(atSet).toBeGreaterThan(0); // checks were being recorded while it was set
      expect(await recordedFrom(1n)).toBe(atSet);
      expect(outcomes.filter((o) => o instanceof SlashingProtectionError && o.refusal === "BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK").length).toBe(
        outcomes.length - atSet,
      );
    } finally {
      await signer.close();
      await admin.close();
      await h.close();
    }
  });

  it("cannot race with first-seen keys: checks for keys never seen before stream in while it is set", async () => {
    const location = await backend.freshLocation();
    const h = await backend.open(GVR, location);
    const admin = await h.admin();
    const signer = await openProtection(location);
    let next = 0;
    const freshKey = () => {
      const k = Buffer.alloc(48, 0xd0);
      k.writeUInt32BE(next++, 0);
      return k;
    };
    const recordedFrom = async (slot: bigint) => (await h.rows()).reduce((n, v) => n + v.blocks.filter((b) => b.slot >= slot).length, 0);
    try {
      let stop = false;
      const outcomes: unknown[] = [];
      // Each check registers its key in the batch that judges it: the setter cannot see those rows yet.
      const loops = Array.from({ length: 8 }, async () => {
        while (!stop)
          outcomes.push(
            await signer.checkAndRecord({ kind: "block", pubkey: freshKey(), slot: 7n, signingRoot: Buffer.alloc(32, 2) }).catch((e: unknown) => e),
          );
      });
      await new Promise((r) => setTimeout(r, 150));
      await admin.setHighWatermark({ slot: 1n });
      const atSet = await recordedFrom(1n);
      await new Promise((r) => setTimeout(r, 100));
      stop = true;
      await Promise.all(loops);
      expect(atSet).toBeGreaterThan(0);
      expect(await recordedFrom(1n)).toBe(atSet); // nothing judged before the set was recorded after it returned
      const refused = outcomes.filter((o) => o instanceof SlashingProtectionError && o.refusal === "BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK").length;
      expect(refused).toBeGreaterThan(0);
      expect(refused).toBe(outcomes.length - atSet); // and nothing failed otherwise (no deadlock)
    } finally {
      await signer.close();
      await admin.close();
      await h.close();
    }
  });

  it.runIf(backend.name === "postgres")("PostgreSQL: setting for every key waits for a batch that registers a first-seen key", async () => {
    const location = await backend.freshLocation();
    if (location.kind !== "postgres") throw new Error("unreachable");
    const h = await backend.open(GVR, location);
    const admin = await h.admin();
    const batch = new pg.Client(toPoolConfig(location.connection));
    await batch.connect();
    try {
      await h.block(PK1, 1, root(1));
      // A batch as postgres/protection.ts runs it, for a key no transaction has committed: registered and locked,
      // judged (no high watermark yet), not yet recorded.
      await batch.query("BEGIN");
      const history = new PgHistory(batch);
      const id = (await history.lockValidators([Buffer.from(NEVER_SEEN.slice(2), "hex")], new Set())).values().next().value!;
      expect((await history.blockSnapshot(id, 10n)).highSlot).toBeNull();
      let set = false;
      const setting = admin.setHighWatermark({ slot: 5n }).then(() => (set = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(set).toBe(false); // the setter waits: returned now, the record below would land after it
      await history.insertBlock(id, 10n, Buffer.alloc(32, 1));
      await batch.query("COMMIT");
      await setting;
      expect(await refusal(h.block(NEVER_SEEN, 11, root(11)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
      expect(await refusal(h.block(PK1, 5, root(5)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
    } finally {
      await batch.end();
      await admin.close();
      await h.close();
    }
  });

  it.runIf(backend.name === "postgres")("PostgreSQL: setting waits for a batch that holds its validators' row locks", async () => {
    const location = await backend.freshLocation();
    if (location.kind !== "postgres") throw new Error("unreachable");
    const h = await backend.open(GVR, location);
    const admin = await h.admin();
    const batch = new pg.Client(toPoolConfig(location.connection));
    await batch.connect();
    try {
      await h.block(PK1, 1, root(1));
      // What a batch of checks holds between its judgement and its commit (postgres/protection.ts).
      await batch.query("BEGIN");
      await batch.query("SELECT id FROM validators WHERE pubkey = $1 FOR UPDATE", [Buffer.from(PK1.slice(2), "hex")]);
      let set = false;
      const setting = admin.setHighWatermark({ slot: 5n }).then(() => (set = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(set).toBe(false);
      await batch.query("COMMIT");
      await setting;
      expect(await refusal(h.block(PK1, 5, root(5)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
    } finally {
      await batch.end();
      await admin.close();
      await h.close();
    }
  });

  it("per key: bounds only that key, the lower of its own and the all-keys one applies, an omitted bound is kept", async () => {
    const h = await backend.open(GVR);
    const admin = await h.admin();
    try {
      await h.raise(PK2, 5, 1);
      expect(await admin.setHighWatermark({ pubkeys: [PK1], slot: 50n, epoch: 6n })).toBe(1);
      expect(await refusal(h.block(PK1, 50, root(50)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
      expect(await h.block(PK2, 60, root(60))).toBe("recorded");
      expect(await h.att(PK2, 6, 7, root(67))).toBe("recorded");
      expect(await refusal(h.att(PK1, 5, 6, root(56)))).toBe("ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK");

      await admin.setHighWatermark({ slot: 40n }); // all keys, lower than PK1's own
      expect(await refusal(h.block(PK1, 45, root(45)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
      expect(await refusal(h.block(PK2, 61, root(61)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
      await admin.setHighWatermark({ pubkeys: [PK1], slot: 30n }); // epoch 6 kept
      const report = await admin.watermarks();
      expect(report.all).toEqual({ slot: 40n, epoch: null });
      const byKey = new Map(report.validators.map((v) => [v.pubkey, v]));
      expect(byKey.get(PK1)!.high).toEqual({ slot: 30n, epoch: 6n });
      expect(byKey.get(PK2)).toEqual({ pubkey: PK2, low: { blockSlot: 60n, sourceEpoch: 6n, targetEpoch: 7n }, high: null });
      expect((await admin.watermarks([PK2])).validators.map((v) => v.pubkey)).toEqual([PK2]);

      expect(await admin.removeHighWatermark({ pubkeys: [PK1] })).toBe(1);
      expect(await refusal(h.block(PK1, 45, root(45)))).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK"); // the all-keys one stays
      expect(await h.block(PK1, 35, root(35))).toBe("recorded");
      expect(await h.att(PK1, 5, 6, root(56))).toBe("recorded");
      await expect(admin.setHighWatermark({ pubkeys: [PK1] })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    } finally {
      await admin.close();
      await h.close();
    }
  });
});
