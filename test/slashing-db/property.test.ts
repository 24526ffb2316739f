/**
 * Property test: random block/attestation/watermark sequences against the database and the brute-force
 * oracle. They must agree on every answer, and the recorded history must never hold a slashable pair.
 * The first property runs on both backends (SQLite, PostgreSQL) through test/helpers/backends.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SlashingProtectionError, openSlashingDb } from "../../slashing-db/index.js";
import { testBackends } from "../helpers/backends.js";
import { freshDbPath, tempDir } from "../helpers/tmp.js";
import { Oracle, attsSlashable, blocksSlashable } from "./oracle.js";

const GVR = `0x${"11".repeat(32)}`;
const KEYS = [`0x${"a1".repeat(48)}`, `0x${"B2".repeat(48)}`]; // mixed case on purpose
const ROOTS = [undefined, `0x${"01".repeat(32)}`, `0x${"02".repeat(32)}`, `0x${"00".repeat(32)}`];
const dir = tempDir();
const backends = testBackends();
/** PostgreSQL pays a CREATE DATABASE and a migration per run. */
const RUNS = { sqlite: 300, postgres: 60 };

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

async function allowed(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (err) {
    if (!(err instanceof SlashingProtectionError)) throw err;
    return false;
  }
}

describe.each(backends.map((b) => [b.name, b] as const))("%s database vs brute-force oracle", (_name, backend) => {
  it("agree on every answer and never record a slashable pair", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), fc.boolean(), async (ops, concurrent) => {
        const db = await backend.open(GVR);
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
              p = allowed(db.block(pk, o.slot, ROOTS[o.root]));
            } else if (o.kind === "att") {
              expected.push(oracles[o.key]!.att({ source: o.source, target: o.target, root: ROOTS[o.root] }));
              p = allowed(db.att(pk, o.source, o.target, ROOTS[o.root]));
            } else {
              if (concurrent) await Promise.all(answers); // raising is not a queued check: order it after them
              oracles[o.key]!.raise(o.slot, o.epoch);
              await db.raise(pk, o.slot, o.epoch);
              expected.push(true);
              p = Promise.resolve(true);
            }
            if (!concurrent) await p;
            answers.push(p);
          }
          expect(await Promise.all(answers)).toEqual(expected);

          for (const { blocks, atts } of await db.rows()) {
            for (let i = 0; i < blocks.length; i++) for (let j = i + 1; j < blocks.length; j++) expect(blocksSlashable(blocks[i]!, blocks[j]!)).toBe(false);
            for (let i = 0; i < atts.length; i++) for (let j = i + 1; j < atts.length; j++) expect(attsSlashable(atts[i]!, atts[j]!)).toBe(false);
          }
        } finally {
          await db.close();
        }
      }),
      { numRuns: RUNS[backend.name] },
    );
  });
});

describe("slashing database (SQLite) pruning", () => {
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
