import type Database from "better-sqlite3";
import { bytesToHex } from "../../common/index.js";
import { INTERCHANGE_FORMAT_VERSION } from "./parse.js";

export interface InterchangeBlock {
  slot: string;
  signing_root?: string;
}
export interface InterchangeAttestation {
  source_epoch: string;
  target_epoch: string;
  signing_root?: string;
}
export interface InterchangeRecord {
  pubkey: string;
  signed_blocks: InterchangeBlock[];
  signed_attestations: InterchangeAttestation[];
}
export interface Interchange {
  metadata: { interchange_format_version: string; genesis_validators_root: string };
  data: InterchangeRecord[];
}

/** One validator's whole history, as any backend loads it for export. */
export interface ValidatorHistory {
  pubkey: Buffer;
  blocks: { slot: bigint; root: Buffer | null }[]; // ascending slot
  attestations: { source: bigint; target: bigint; root: Buffer | null }[]; // ascending target, source
  marks: { blockSlot: bigint | null; sourceEpoch: bigint | null; targetEpoch: bigint | null };
}

/**
 * Builds an EIP-3076 interchange from the database.
 *
 * Explicit low watermarks have no field in the format, so they are exported as what the format can say:
 * a record at the watermark with an unknown root, with the records it makes redundant left out. An importer
 * applying either strategy then refuses at least everything this database refuses.
 */
export function exportInterchange(db: Database.Database, genesisValidatorsRoot: string, opts: { pubkeys?: Buffer[]; minify?: boolean }): Interchange {
  return buildInterchange(loadHistories(db, opts.pubkeys), genesisValidatorsRoot, opts.minify ?? false);
}

/** The interchange of histories however loaded: one format, whichever backend holds them. */
export function buildInterchange(histories: ValidatorHistory[], genesisValidatorsRoot: string, minify: boolean): Interchange {
  const data = histories.map((h) => (minify ? minifiedRecord(h) : completeRecord(h)));
  return { metadata: { interchange_format_version: INTERCHANGE_FORMAT_VERSION, genesis_validators_root: genesisValidatorsRoot }, data };
}

function completeRecord(h: ValidatorHistory): InterchangeRecord {
  return { pubkey: bytesToHex(h.pubkey), signed_blocks: completeBlocks(h), signed_attestations: completeAttestations(h) };
}

function completeBlocks(h: ValidatorHistory): InterchangeBlock[] {
  const mark = h.marks.blockSlot;
  const minSlot = h.blocks[0]?.slot ?? null;
  let blocks = h.blocks;
  const out: InterchangeBlock[] = [];
  if (mark !== null && (minSlot === null || mark >= minSlot)) {
    blocks = blocks.filter((b) => b.slot >= mark);
    if (blocks[0]?.slot !== mark) out.push({ slot: mark.toString() });
  }
  for (const b of blocks) out.push(blockEntry(b.slot, b.root));
  return out;
}

function completeAttestations(h: ValidatorHistory): InterchangeAttestation[] {
  const atts = h.attestations;
  const minSource = atts.reduce<bigint | null>((m, a) => (m === null || a.source < m ? a.source : m), null);
  const minTarget = atts[0]?.target ?? null;
  const { sourceEpoch: markS, targetEpoch: markT } = h.marks;
  const sourceMarkBinds = markS !== null && (minSource === null || markS > minSource);
  const targetMarkBinds = markT !== null && (minTarget === null || markT > minTarget);
  if (!sourceMarkBinds && !targetMarkBinds) return atts.map((a) => attEntry(a.source, a.target, a.root));

  // Effective watermarks, then a synthetic (S*, T*) vote: records below T* are left out, and S* is raised to
  // cover their sources, so the synthetic vote surrounds anything they would have caught.
  const effSource = maxOf(markS, minSource);
  const effTarget = maxOf(markT, minTarget) ?? effSource!;
  const omitted = atts.filter((a) => a.target < effTarget);
  const kept = atts.filter((a) => a.target >= effTarget);
  const synthSource = omitted.reduce((m, a) => (a.source > m ? a.source : m), effSource ?? 0n);
  const out: InterchangeAttestation[] = [];
  if (!kept.some((a) => a.target === effTarget && a.source === synthSource)) {
    out.push({ source_epoch: synthSource.toString(), target_epoch: effTarget.toString() });
  }
  for (const a of kept) out.push(attEntry(a.source, a.target, a.root));
  return out;
}

function minifiedRecord(h: ValidatorHistory): InterchangeRecord {
  const maxSlot = maxOf(h.blocks.at(-1)?.slot ?? null, h.marks.blockSlot);
  const maxSource = maxOf(
    h.attestations.reduce<bigint | null>((m, a) => maxOf(m, a.source), null),
    h.marks.sourceEpoch,
  );
  const maxTarget = maxOf(h.attestations.at(-1)?.target ?? null, h.marks.targetEpoch);
  return {
    pubkey: bytesToHex(h.pubkey),
    signed_blocks: maxSlot === null ? [] : [{ slot: maxSlot.toString() }],
    signed_attestations: maxSource === null || maxTarget === null ? [] : [{ source_epoch: maxSource.toString(), target_epoch: maxTarget.toString() }],
  };
}

export function loadHistories(db: Database.Database, pubkeys?: Buffer[]): ValidatorHistory[] {
  const blocksOf = db.prepare<[bigint], { slot: bigint; signing_root: Buffer | null }>(
    "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = ? ORDER BY slot",
  );
  const attsOf = db.prepare<[bigint], { source_epoch: bigint; target_epoch: bigint; signing_root: Buffer | null }>(
    "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = ? ORDER BY target_epoch, source_epoch",
  );
  const marksOf = db.prepare<[bigint], { block_slot: bigint | null; source_epoch: bigint | null; target_epoch: bigint | null }>(
    "SELECT block_slot, source_epoch, target_epoch FROM low_watermarks WHERE validator_id = ?",
  );
  const idOf = db.prepare<[Buffer], { id: bigint }>("SELECT id FROM validators WHERE pubkey = ?");
  const validators: { id: bigint | null; pubkey: Buffer }[] = pubkeys
    ? pubkeys.map((pubkey) => ({ id: idOf.get(pubkey)?.id ?? null, pubkey }))
    : db.prepare<[], { id: bigint; pubkey: Buffer }>("SELECT id, pubkey FROM validators ORDER BY id").all();

  return validators.map(({ id, pubkey }) => {
    if (id === null) return { pubkey, blocks: [], attestations: [], marks: { blockSlot: null, sourceEpoch: null, targetEpoch: null } };
    const marks = marksOf.get(id);
    return {
      pubkey,
      blocks: blocksOf.all(id).map((r) => ({ slot: r.slot, root: r.signing_root })),
      attestations: attsOf.all(id).map((r) => ({ source: r.source_epoch, target: r.target_epoch, root: r.signing_root })),
      marks: { blockSlot: marks?.block_slot ?? null, sourceEpoch: marks?.source_epoch ?? null, targetEpoch: marks?.target_epoch ?? null },
    };
  });
}

function blockEntry(slot: bigint, root: Buffer | null): InterchangeBlock {
  return root ? { slot: slot.toString(), signing_root: bytesToHex(root) } : { slot: slot.toString() };
}

function attEntry(source: bigint, target: bigint, root: Buffer | null): InterchangeAttestation {
  const entry: InterchangeAttestation = { source_epoch: source.toString(), target_epoch: target.toString() };
  if (root) entry.signing_root = bytesToHex(root);
  return entry;
}

function maxOf(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}
