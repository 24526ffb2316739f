import { EXIT_CODES } from "../common/index.js";
import { hasMarks, type SlashingDbAdmin } from "./admin.js";
import { SlashingDbError } from "./errors.js";
import type { Interchange, ValidatorHistory } from "./interchange/export.js";

export interface CopyResult {
  validators: number;
  blocks: number;
  attestations: number;
  /** Validators whose explicit low watermarks were copied (an interchange cannot carry them as such). */
  watermarks: number;
  /** The destination held nothing before: the copy was exact, verified by comparing both exports. */
  destinationWasEmpty: boolean;
  /** What differs after the copy ([] when verified). */
  differences: string[];
}

/**
 * Moves a whole history from one slashing database to another, whatever their backends: every record and every
 * explicit watermark (read raw, not through an export, which folds old records into a synthetic watermark),
 * written in one transaction, read and written a chunk of validators at a time. Refuses a destination pinned to
 * another network (exit 42). Then verifies, chunk by chunk: an empty destination must export exactly what the source exports (order aside: SQLite lists validators by insertion,
 * PostgreSQL by pubkey); a non-empty one (a merge) must hold every source record, with the same root or with its
 * root made unknown by a clash, and watermarks at least as high.
 */
export async function copyHistory(from: SlashingDbAdmin, to: SlashingDbAdmin): Promise<CopyResult> {
  const root = from.genesisValidatorsRoot;
  if (root === null) {
    throw new SlashingDbError("DB_NOT_FOUND", `the source ${from.location} holds no history (it is not pinned to a network)`, EXIT_CODES.notFound);
  }
  if (to.genesisValidatorsRoot !== null && to.genesisValidatorsRoot !== root) {
    throw new SlashingDbError(
      "GENESIS_VALIDATORS_ROOT_MISMATCH",
      `the destination ${to.location} belongs to the network ${to.genesisValidatorsRoot}, the source to ${root}; nothing copied`,
      EXIT_CODES.dbNetworkMismatch,
    );
  }
  const destinationWasEmpty = (await to.stats()).validators === 0;
  const pubkeys = await from.listPubkeys();
  const copied = { blocks: 0, attestations: 0, watermarks: 0 };
  // A chunk of validators at a time, in pubkey order: a long history never sits in memory whole.
  async function* chunks(): AsyncGenerator<ValidatorHistory[]> {
    for (let i = 0; i < pubkeys.length; i += CHUNK) {
      const histories = await from.readHistories(pubkeys.slice(i, i + CHUNK));
      for (const h of histories) {
        copied.blocks += h.blocks.length;
        copied.attestations += h.attestations.length;
        if (hasMarks(h)) copied.watermarks++;
      }
      yield histories;
    }
  }
  await to.writeHistories(root, chunks());

  const differences: string[] = [];
  for (let i = 0; i < pubkeys.length; i += CHUNK) {
    const keys = pubkeys.slice(i, i + CHUNK);
    differences.push(...missingFrom(await from.readHistories(keys), await to.readHistories(keys)));
    if (destinationWasEmpty) {
      const hexKeys = keys.map((k) => `0x${k.toString("hex")}`);
      differences.push(...compareExports(await from.exportInterchange({ pubkeys: hexKeys }), await to.exportInterchange({ pubkeys: hexKeys })));
    }
  }
  // Each chunk is read in its own snapshot: a validator added meanwhile (a signer left running) is not copied.
  const now = (await from.listPubkeys()).length;
  if (now !== pubkeys.length)
    differences.push(`the source changed during the copy (${pubkeys.length} validator(s) when it began, ${now} now): stop every signer on it`);
  const destinationNow = (await to.stats()).validators;
  if (destinationWasEmpty && destinationNow !== pubkeys.length)
    differences.push(`the destination holds ${destinationNow} validator(s), the source ${pubkeys.length}`);
  return {
    validators: pubkeys.length,
    ...copied,
    destinationWasEmpty,
    differences,
  };
}

/** Validators read, written and verified per round. */
const CHUNK = 64;

const hex = (b: Buffer | null) => (b ? b.toString("hex") : "unknown");

/** Source records and watermarks the destination does not hold (a merge may only have forgotten a root). */
function missingFrom(source: ValidatorHistory[], dest: ValidatorHistory[]): string[] {
  const byKey = new Map(dest.map((h) => [h.pubkey.toString("hex"), h]));
  const out: string[] = [];
  for (const s of source) {
    const name = `0x${s.pubkey.toString("hex")}`;
    const d = byKey.get(s.pubkey.toString("hex"));
    if (!d) {
      out.push(`${name}: missing from the destination`);
      continue;
    }
    const blocks = new Map(d.blocks.map((b) => [b.slot, b.root]));
    for (const b of s.blocks) {
      const r = blocks.get(b.slot);
      if (r === undefined || (r !== null && hex(r) !== hex(b.root))) out.push(`${name}: block at slot ${b.slot} (root ${hex(b.root)}) not in the destination`);
    }
    const atts = new Map(d.attestations.map((a) => [`${a.source}/${a.target}`, a.root]));
    for (const a of s.attestations) {
      const r = atts.get(`${a.source}/${a.target}`);
      if (r === undefined || (r !== null && hex(r) !== hex(a.root)))
        out.push(`${name}: attestation ${a.source}->${a.target} (root ${hex(a.root)}) not in the destination`);
    }
    for (const k of ["blockSlot", "sourceEpoch", "targetEpoch"] as const) {
      const want = s.marks[k];
      const got = d.marks[k];
      if (want !== null && (got === null || got < want)) out.push(`${name}: low watermark ${k} is ${got ?? "unset"} in the destination, ${want} in the source`);
    }
  }
  return out;
}

/** The two exports as sets: validators in any order, each one's entries in any order. */
export function compareExports(a: Interchange, b: Interchange): string[] {
  const out: string[] = [];
  if (a.metadata.genesis_validators_root !== b.metadata.genesis_validators_root) {
    out.push(`genesis_validators_root: ${a.metadata.genesis_validators_root} in the source, ${b.metadata.genesis_validators_root} in the destination`);
  }
  const entries = (x: Interchange) =>
    new Map(
      x.data.map((r) => [
        r.pubkey,
        new Set([...r.signed_blocks.map((e) => `block ${JSON.stringify(e)}`), ...r.signed_attestations.map((e) => `attestation ${JSON.stringify(e)}`)]),
      ]),
    );
  const ea = entries(a);
  const eb = entries(b);
  for (const key of new Set([...ea.keys(), ...eb.keys()])) {
    const sa = ea.get(key);
    const sb = eb.get(key);
    if (!sa || !sb) {
      out.push(`${key}: exported only by the ${sa ? "source" : "destination"}`);
      continue;
    }
    for (const e of sa) if (!sb.has(e)) out.push(`${key}: ${e} exported only by the source`);
    for (const e of sb) if (!sa.has(e)) out.push(`${key}: ${e} exported only by the destination`);
  }
  return out;
}
