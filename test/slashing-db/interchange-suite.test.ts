/**
 * The EIP-3076 interchange test suite (../shared/interchange-tests), under the complete strategy.
 * Run 1: every case as given, expecting `should_succeed_complete` for every block and attestation.
 * Run 2: the final history exported, minified and re-imported into a fresh database: that database must
 *        behave exactly as the minimal strategy over the exported maxima, and never allow anything the
 *        complete database refuses.
 * Run 3: complete export → import into a fresh database → export again gives the same interchange.
 * Each run against both backends (SQLite and PostgreSQL) through one async handle (test/helpers/backends.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InterchangeError, SlashingProtectionError } from "../../slashing-db/index.js";
import { testBackends, type Backend, type BackendHandle } from "../helpers/backends.js";

const SUITE_DIR = path.resolve(__dirname, "../../../shared/interchange-tests");

interface Check {
  pubkey: string;
  should_succeed: boolean;
  should_succeed_complete: boolean;
  signing_root?: string;
}
interface BlockCheck extends Check {
  slot: string;
}
interface AttCheck extends Check {
  source_epoch: string;
  target_epoch: string;
}
interface Step {
  should_succeed: boolean;
  contains_slashable_data: boolean;
  interchange: object;
  blocks: BlockCheck[];
  attestations: AttCheck[];
}
interface Case {
  name: string;
  genesis_validators_root: string;
  steps: Step[];
}

const cases: Case[] = fs
  .readdirSync(SUITE_DIR)
  .filter((f) => f.endsWith(".json") && f !== "schema.json")
  .sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(SUITE_DIR, f), "utf8")));

const backends = testBackends();

async function outcome(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (err) {
    expect(err).toBeInstanceOf(SlashingProtectionError);
    return false;
  }
}

function allowsBlock(db: BackendHandle, b: BlockCheck): Promise<boolean> {
  return db.allowsBlock(b.pubkey, b.slot, b.signing_root);
}
function allowsAtt(db: BackendHandle, a: AttCheck): Promise<boolean> {
  return db.allowsAtt(a.pubkey, a.source_epoch, a.target_epoch, a.signing_root);
}

/** Runs a case as given; returns the open database for the later runs. */
async function runAsGiven(backend: Backend, c: Case): Promise<BackendHandle> {
  const db = await backend.open(c.genesis_validators_root);
  for (const [i, step] of c.steps.entries()) {
    if (step.should_succeed) {
      await db.importInterchange(step.interchange);
    } else {
      const before = await db.exportInterchange();
      await expect(db.importInterchange(step.interchange), `step ${i} import should fail`).rejects.toThrow(InterchangeError);
      expect(await db.exportInterchange()).toEqual(before);
    }
    for (const [j, b] of step.blocks.entries()) {
      const got = await outcome(db.block(b.pubkey, b.slot, b.signing_root));
      expect(got, `step ${i} block ${j} (slot ${b.slot})`).toBe(b.should_succeed_complete);
    }
    for (const [j, a] of step.attestations.entries()) {
      const got = await outcome(db.att(a.pubkey, a.source_epoch, a.target_epoch, a.signing_root));
      expect(got, `step ${i} attestation ${j} (${a.source_epoch}, ${a.target_epoch})`).toBe(a.should_succeed_complete);
    }
  }
  return db;
}

describe.each(backends.map((b) => [b.name, b] as const))("%s", (_backend, backend) => {
  describe.each(cases.map((c) => [c.name, c] as const))("EIP-3076 %s", (_name, c) => {
    it("complete strategy, as given (should_succeed_complete)", async () => {
      const db = await runAsGiven(backend, c);
      await db.close();
    });

    it("export → minified re-import behaves as the minimal strategy and is never more permissive", async () => {
      const complete = await runAsGiven(backend, c);
      const minified = await complete.exportInterchange({ minify: true });
      const reimported = await backend.open(c.genesis_validators_root);
      await reimported.importInterchange(JSON.parse(JSON.stringify(minified)));

      const maxima = new Map(
        minified.data.map((r) => [
          r.pubkey,
          {
            slot: r.signed_blocks[0] ? BigInt(r.signed_blocks[0].slot) : null,
            source: r.signed_attestations[0] ? BigInt(r.signed_attestations[0].source_epoch) : null,
            target: r.signed_attestations[0] ? BigInt(r.signed_attestations[0].target_epoch) : null,
          },
        ]),
      );
      for (const step of c.steps) {
        for (const b of step.blocks) {
          const max = maxima.get(b.pubkey.toLowerCase())?.slot ?? null;
          const minimal = max === null || BigInt(b.slot) > max;
          expect(await allowsBlock(reimported, b), `block slot ${b.slot}`).toBe(minimal);
          if (await allowsBlock(reimported, b)) expect(await allowsBlock(complete, b)).toBe(true);
        }
        for (const a of step.attestations) {
          const m = maxima.get(a.pubkey.toLowerCase());
          const s = BigInt(a.source_epoch);
          const t = BigInt(a.target_epoch);
          const minimal = s <= t && (m?.source == null || s >= m.source) && (m?.target == null || t > m.target);
          expect(await allowsAtt(reimported, a), `attestation (${s}, ${t})`).toBe(minimal);
          if (await allowsAtt(reimported, a)) expect(await allowsAtt(complete, a)).toBe(true);
        }
      }
      await complete.close();
      await reimported.close();
    });

    it("complete export round-trips unchanged", async () => {
      const db = await runAsGiven(backend, c);
      const exported = await db.exportInterchange();
      const copy = await backend.open(c.genesis_validators_root);
      await copy.importInterchange(JSON.stringify(exported));
      expect(await copy.exportInterchange()).toEqual(exported);
      await db.close();
      await copy.close();
    });
  });
});

it("the suite is present and complete", () => {
  expect(cases.length).toBeGreaterThanOrEqual(26);
});
