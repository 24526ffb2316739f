/**
 * The operator's operations on both backends with the same assertions: prune keeps protection (everything
 * refused before is refused after) and deletes the same rows; stats count the same; copy moves every record and
 * watermark between any two backends, verified, and refuses another network's database.
 */
import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { copyHistory } from "../../slashing-db/index.js";
import { compareExports } from "../../slashing-db/copy.js";
import type { ValidatorHistory } from "../../slashing-db/interchange/export.js";
import { testBackends, type BackendHandle } from "../helpers/backends.js";

const GVR = `0x${"55".repeat(32)}`;
const OTHER_GVR = `0x${"66".repeat(32)}`;
const PK1 = `0x${"a1".repeat(48)}`;
const PK2 = `0x${"a2".repeat(48)}`;
const PK3 = `0x${"a3".repeat(48)}`;
const KEYS = [PK1, PK2, PK3];
const rootOf = (n: number) => `0x${n.toString(16).padStart(64, "0")}`;
const OTHER_ROOT = `0x${"ee".repeat(32)}`;

/** PK1: a long history; PK2: too short to prune; PK3: an operator-raised watermark below its history. */
async function record(h: BackendHandle): Promise<void> {
  for (const slot of [0, 3, 7, 12, 20, 33]) await h.block(PK1, slot, rootOf(slot));
  for (const [s, t] of [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 5],
    [5, 8],
    [8, 9],
    [9, 10],
  ] as const)
    await h.att(PK1, s, t, rootOf(s * 100 + t));
  for (const slot of [100, 101]) await h.block(PK2, slot, rootOf(slot));
  await h.att(PK2, 10, 20, rootOf(1020));
  await h.raise(PK3, 50, 6);
  for (const slot of [51, 70]) await h.block(PK3, slot, rootOf(slot));
  await h.att(PK3, 6, 7, rootOf(607));
  await h.att(PK3, 7, 20, rootOf(720));
}

/** Every candidate message (each with its recorded-style root and another one), and whether it is allowed now. */
async function verdicts(h: BackendHandle): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>();
  for (const pk of KEYS) {
    for (let slot = 0; slot <= 105; slot++) {
      for (const root of [rootOf(slot), OTHER_ROOT]) out.set(`${pk} block ${slot} ${root}`, await h.allowsBlock(pk, slot, root));
    }
    for (let t = 0; t <= 22; t++) {
      for (let s = Math.max(0, t - 12); s <= t; s++) {
        for (const root of [rootOf(s * 100 + t), OTHER_ROOT]) out.set(`${pk} att ${s}->${t} ${root}`, await h.allowsAtt(pk, s, t, root));
      }
    }
  }
  return out;
}

const byPubkey = (hs: ValidatorHistory[]) => [...hs].sort((a, b) => Buffer.compare(a.pubkey, b.pubkey));

const backends = testBackends();
for (const backend of backends) {
  describe(`slashing database administration on ${backend.name}`, () => {
    it("prune deletes the same rows as on the other backend, raises watermarks, and refuses everything it refused before", async () => {
      const h = await backend.open(GVR);
      const admin = await h.admin();
      try {
        await record(h);
        expect(await admin.stats()).toMatchObject({ backend: backend.name, genesisValidatorsRoot: GVR, validators: 3, blocks: 10, attestations: 10 });
        const before = await verdicts(h);

        const summary = await admin.prune({ keepEpochs: 2, slotsPerEpoch: 4 });
        // PK1: slots 0-20 (below 33 - 8) and targets 1-5 (below 10 - 2); PK3: slot 51, vote 6->7; PK2 untouched.
        expect(summary).toEqual({ validators: 2, blocksDeleted: 6, attestationsDeleted: 5 });
        expect(await admin.stats()).toMatchObject({ validators: 3, blocks: 4, attestations: 5 });

        const after = await verdicts(h);
        const weakened = [...before].filter(([k, allowed]) => !allowed && after.get(k) === true).map(([k]) => k);
        expect(weakened).toEqual([]);
        // The deleted double proposal at slot 3 is still refused, by the raised watermark now.
        expect(before.get(`${PK1} block 3 ${OTHER_ROOT}`)).toBe(false);
        const marks = new Map((await admin.readHistories()).map((v) => [`0x${v.pubkey.toString("hex")}`, v.marks]));
        expect(marks.get(PK1)).toEqual({ blockSlot: 20n, sourceEpoch: 3n, targetEpoch: 5n });
        expect(marks.get(PK3)).toEqual({ blockSlot: 51n, sourceEpoch: 6n, targetEpoch: 7n });

        // A second prune finds nothing more to delete: the newest rows are never touched.
        expect(await admin.prune({ keepEpochs: 2, slotsPerEpoch: 4 })).toEqual({ validators: 0, blocksDeleted: 0, attestationsDeleted: 0 });
      } finally {
        await admin.close();
        await h.close();
      }
    });

    it("raise-watermarks: every known validator, or those given; never lowers", async () => {
      const h = await backend.open(GVR);
      const admin = await h.admin();
      try {
        await record(h);
        expect(await h.allowsBlock(PK2, 102, OTHER_ROOT)).toBe(true);
        expect(await admin.raiseWatermarks({ slot: 102n, epoch: 21n })).toBe(3);
        expect(await h.allowsBlock(PK2, 102, OTHER_ROOT)).toBe(false);
        expect(await h.allowsAtt(PK1, 20, 21, OTHER_ROOT)).toBe(false);
        expect(await h.allowsBlock(PK1, 103, OTHER_ROOT)).toBe(true);
        expect(await admin.raiseWatermarks({ pubkeys: [PK1], slot: 5n, epoch: 2n })).toBe(1);
        const marks = new Map((await admin.readHistories()).map((v) => [`0x${v.pubkey.toString("hex")}`, v.marks]));
        expect(marks.get(PK1)).toEqual({ blockSlot: 102n, sourceEpoch: 21n, targetEpoch: 21n });
      } finally {
        await admin.close();
        await h.close();
      }
    });

    it("prune while checks are being recorded: every check answers, nothing recorded is lost", async () => {
      const h = await backend.open(GVR);
      const admin = await h.admin();
      try {
        for (let e = 1; e <= 200; e++) await h.att(PK1, e - 1, e, rootOf(e));
        const signing = (async () => {
          for (let e = 201; e <= 260; e++) await h.att(PK1, e - 1, e, rootOf(e));
        })();
        const pruned = admin.prune({ keepEpochs: 10, slotsPerEpoch: 32 });
        await Promise.all([signing, pruned]);
        const rows = (await h.rows())[0]!.atts.map((a) => Number(a.target)).sort((a, b) => a - b);
        // The newest vote and everything pruning keeps relative to it are there; nothing at or below the cut is.
        expect(rows.at(-1)).toBe(260);
        expect(await h.allowsAtt(PK1, 100, 101, rootOf(101))).toBe(false);
      } finally {
        await admin.close();
        await h.close();
      }
    });

    for (const to of backends) {
      it(`copy to an empty ${to.name} database: every record and watermark, verified`, async () => {
        const h = await backend.open(GVR);
        const source = await h.admin();
        const dest = await to.freshAdmin();
        try {
          await record(h);
          await h.raise(PK1, 2, 1); // below its history: the export folds nothing, but the watermark must still arrive
          await h.raise(PK2, 102, 25); // above its history: the export turns it into a synthetic record
          const result = await copyHistory(source, dest);
          expect(result).toEqual({ validators: 3, blocks: 10, attestations: 10, watermarks: 3, destinationWasEmpty: true, differences: [] });
          expect(byPubkey(await dest.readHistories())).toEqual(byPubkey(await source.readHistories()));
          expect(compareExports(await source.exportInterchange(), await dest.exportInterchange())).toEqual([]);
          expect(dest.genesisValidatorsRoot).toBe(GVR);
        } finally {
          await Promise.all([source.close(), dest.close()]);
          await h.close();
        }
      });
    }

    it("copy refuses a destination pinned to another network (exit 42) and writes nothing; merges into one of the same network", async () => {
      const h = await backend.open(GVR);
      const source = await h.admin();
      const other = await backend.open(OTHER_GVR);
      const otherAdmin = await other.admin();
      const same = await backend.open(GVR);
      const sameAdmin = await same.admin();
      try {
        await record(h);
        await other.block(PK1, 500, rootOf(500));
        await expect(copyHistory(source, otherAdmin)).rejects.toMatchObject({
          code: "GENESIS_VALIDATORS_ROOT_MISMATCH",
          exitCode: EXIT_CODES.dbNetworkMismatch,
        });
        expect(await otherAdmin.stats()).toMatchObject({ validators: 1, blocks: 1, attestations: 0 });

        await same.block(PK1, 3, OTHER_ROOT); // clashes with the source's block at slot 3: kept, root forgotten
        await same.block(`0x${"a4".repeat(48)}`, 9, rootOf(9));
        const merged = await copyHistory(source, sameAdmin);
        expect(merged).toMatchObject({ destinationWasEmpty: false, differences: [] });
        expect(await sameAdmin.stats()).toMatchObject({ validators: 4, blocks: 11, attestations: 10 });
      } finally {
        await Promise.all([source.close(), otherAdmin.close(), sameAdmin.close()]);
        await Promise.all([h.close(), other.close(), same.close()]);
      }
    });
  });
}

describe("compareExports", () => {
  const a = {
    metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
    data: [
      { pubkey: PK1, signed_blocks: [{ slot: "1" }, { slot: "2" }], signed_attestations: [] },
      { pubkey: PK2, signed_blocks: [], signed_attestations: [{ source_epoch: "1", target_epoch: "2" }] },
    ],
  };
  it("ignores the order of validators and of entries, and names every difference", () => {
    const reordered = { ...a, data: [a.data[1]!, { ...a.data[0]!, signed_blocks: [{ slot: "2" }, { slot: "1" }] }] };
    expect(compareExports(a, reordered)).toEqual([]);
    const changed = { ...a, data: [{ ...a.data[0]!, signed_blocks: [{ slot: "1" }, { slot: "3" }] }] };
    expect(compareExports(a, changed)).toEqual([
      `${PK1}: block {"slot":"2"} exported only by the source`,
      `${PK1}: block {"slot":"3"} exported only by the destination`,
      `${PK2}: exported only by the source`,
    ]);
  });
});
