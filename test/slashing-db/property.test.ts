/**
 * Property test: random block/attestation/watermark sequences against the database and the brute-force
 * oracle. They must agree on every answer, and the recorded history must never hold a slashable pair.
 */
import Database from "better-sqlite3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SlashingProtectionError, openSlashingDb } from "../../slashing-db/index.js";
import { freshDbPath, tempDir } from "../helpers/tmp.js";
import { Oracle, attsSlashable, blocksSlashable, type OAtt, type OBlock } from "./oracle.js";

const GVR = `0x${"11".repeat(32)}`;
const KEYS = [`0x${"a1".repeat(48)}`, `0x${"B2".repeat(48)}`]; // mixed case on purpose
const ROOTS = [undefined, `0x${"01".repeat(32)}`, `0x${"02".repeat(32)}`, `0x${"00".repeat(32)}`];
const dir = tempDir();

const key = fc.integer({ min: 0, max: KEYS.length - 1 });
const root = fc.integer({ min: 0, max: ROOTS.length - 1 });
const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("block" as const), key, slot: fc.bigInt(0n, 24n), root }) },
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant("att" as const), key, source: fc.bigInt(0n, 10n), target: fc.bigInt(0n, 12n), root }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("raise" as const), key, slot: fc.bigInt(0n, 24n), epoch: fc.bigInt(0n, 10n) }) },
);

/** The rows as stored, read through a separate connection (not the export, which adds watermark records). */
function recordedRows(file: string): { blocks: OBlock[]; atts: OAtt[] }[] {
  const raw = new Database(file, { readonly: true });
  try {
    const hex = (b: Buffer | null) => (b ? `0x${b.toString("hex")}` : undefined);
    const ids = raw.prepare("SELECT id FROM validators").all() as { id: number }[];
    return ids.map(({ id }) => ({
      blocks: (
        raw.prepare("SELECT slot, signing_root FROM signed_blocks WHERE validator_id = ?").all(id) as { slot: number | bigint; signing_root: Buffer | null }[]
      ).map((r) => ({
        slot: BigInt(r.slot),
        root: hex(r.signing_root),
      })),
      atts: (
        raw.prepare("SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = ?").all(id) as {
          source_epoch: number | bigint;
          target_epoch: number | bigint;
          signing_root: Buffer | null;
        }[]
      ).map((r) => ({
        source: BigInt(r.source_epoch),
        target: BigInt(r.target_epoch),
        root: hex(r.signing_root),
      })),
    }));
  } finally {
    raw.close();
  }
}

async function allowed(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (err) {
    if (!(err instanceof SlashingProtectionError)) throw err;
    return false;
  }
}

describe("slashing database vs brute-force oracle", () => {
  it("agree on every answer and never record a slashable pair", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), fc.boolean(), async (ops, concurrent) => {
        const db = openSlashingDb(freshDbPath(dir), { genesisValidatorsRoot: GVR });
        const oracles = KEYS.map(() => new Oracle());
        try {
          // Submitted either one at a time or all at once (one group-commit batch): same answers either way.
          const answers: Promise<boolean>[] = [];
          const expected: boolean[] = [];
          for (const o of ops) {
            const pk = KEYS[o.key]!;
            let p: Promise<boolean>;
            if (o.kind === "block") {
              expected.push(oracles[o.key]!.block({ slot: o.slot, root: ROOTS[o.root] }));
              p = allowed(db.checkAndRecordBlock(pk, o.slot, ROOTS[o.root]));
            } else if (o.kind === "att") {
              expected.push(oracles[o.key]!.att({ source: o.source, target: o.target, root: ROOTS[o.root] }));
              p = allowed(db.checkAndRecordAttestation(pk, o.source, o.target, ROOTS[o.root]));
            } else {
              if (concurrent) await Promise.all(answers); // raising is synchronous; order it after queued checks
              oracles[o.key]!.raise(o.slot, o.epoch);
              db.raiseLowWatermarks({ pubkeys: [pk], slot: o.slot, epoch: o.epoch });
              expected.push(true);
              p = Promise.resolve(true);
            }
            if (!concurrent) await p;
            answers.push(p);
          }
          expect(await Promise.all(answers)).toEqual(expected);

          for (const { blocks, atts } of recordedRows(db.path)) {
            for (let i = 0; i < blocks.length; i++) for (let j = i + 1; j < blocks.length; j++) expect(blocksSlashable(blocks[i]!, blocks[j]!)).toBe(false);
            for (let i = 0; i < atts.length; i++) for (let j = i + 1; j < atts.length; j++) expect(attsSlashable(atts[i]!, atts[j]!)).toBe(false);
          }
        } finally {
          db.close();
        }
      }),
      { numRuns: 300 },
    );
  });

  it("pruning never makes the database more permissive", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ source: fc.bigInt(0n, 40n), span: fc.bigInt(0n, 3n), slot: fc.bigInt(0n, 200n) }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        async (history, keepEpochs) => {
          const full = openSlashingDb(freshDbPath(dir), { genesisValidatorsRoot: GVR });
          const pruned = openSlashingDb(freshDbPath(dir), { genesisValidatorsRoot: GVR });
          try {
            for (const db of [full, pruned]) {
              for (const h of history) {
                await allowed(db.checkAndRecordAttestation(KEYS[0]!, h.source, h.source + h.span));
                await allowed(db.checkAndRecordBlock(KEYS[0]!, h.slot));
              }
            }
            pruned.prune({ keepEpochs, slotsPerEpoch: 4 });
            for (let s = 0n; s <= 44n; s++) {
              for (let t = s; t <= 46n; t++) {
                if (pruned.judgeAttestation(KEYS[0]!, s, t).kind !== "refused") {
                  expect(full.judgeAttestation(KEYS[0]!, s, t).kind, `(${s}, ${t})`).not.toBe("refused");
                }
              }
            }
            for (let slot = 0n; slot <= 210n; slot++) {
              if (pruned.judgeBlock(KEYS[0]!, slot).kind !== "refused") expect(full.judgeBlock(KEYS[0]!, slot).kind).not.toBe("refused");
            }
          } finally {
            full.close();
            pruned.close();
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
