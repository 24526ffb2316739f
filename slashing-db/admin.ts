/**
 * What the operator commands (`vigil slashing …`) need from a slashing database, whatever stores it: the
 * signer's SlashingProtection has no prune, stats or raw history, and nothing a signer does needs them.
 * Both backends implement it with the same semantics (sqlite-admin.ts, postgres/admin.ts).
 */
import type { SetHighWatermark, WatermarkReport } from "./high-watermark.js";
import type { Interchange, ValidatorHistory } from "./interchange/export.js";
import type { ImportSummary } from "./interchange/import.js";
import type { ParsedInterchange } from "./interchange/parse.js";
import type { PruneOptions, PruneSummary } from "./prune.js";

interface CommonStats {
  schemaVersion: number;
  genesisValidatorsRoot: string | null;
  validators: number;
  blocks: number;
  attestations: number;
}

/** SQLite: the file and its size (with the WAL); PostgreSQL: the URL (never a password) and pg_database_size. */
export type SlashingDbAdminStats =
  | ({ backend: "sqlite"; path: string; fileBytes: number } & CommonStats)
  | ({ backend: "postgres"; url: string; databaseBytes: number } & CommonStats);

export interface SlashingDbAdmin {
  readonly backend: "sqlite" | "postgres";
  /** The file or the URL, for messages. */
  readonly location: string;
  readonly genesisValidatorsRoot: string | null;
  importInterchange(interchange: object | string): Promise<ImportSummary>;
  exportInterchange(opts?: { pubkeys?: string[]; minify?: boolean }): Promise<Interchange>;
  /** Deletes old history, raising low watermarks so protection is unchanged (../prune.ts). */
  prune(opts: PruneOptions): Promise<PruneSummary>;
  stats(): Promise<SlashingDbAdminStats>;
  /**
   * Raises (never lowers) the low watermarks of the given validators, or of every known one: afterwards no block
   * at or below `slot`, and no attestation with source below or target at or below `epoch`, is signed. Returns
   * how many validators. For a stack taking over without the full history of the one before it.
   */
  raiseWatermarks(opts: { pubkeys?: string[]; slot?: bigint; epoch?: bigint }): Promise<number>;
  /** Each validator's (or the given ones') effective low watermarks and own high watermark, and the all-keys one. */
  watermarks(pubkeys?: string[]): Promise<WatermarkReport>;
  /** Sets the high watermark of the given keys, or (none given) of every key; see ./high-watermark.ts. */
  setHighWatermark(opts: SetHighWatermark): Promise<number>;
  /** Removes the given keys' own high watermarks, or (none given) every high watermark. Returns rows removed. */
  removeHighWatermark(opts: { pubkeys?: string[] }): Promise<number>;
  /**
   * Every record and explicit watermark as stored (of all validators, or of those given), in one consistent snapshot. Unlike an export, nothing is
   * folded into a synthetic watermark record: this is what `copy` moves.
   */
  readHistories(pubkeys?: Buffer[]): Promise<ValidatorHistory[]>;
  /** Every validator's pubkey, sorted (Buffer.compare, i.e. PostgreSQL's bytea order). */
  listPubkeys(): Promise<Buffer[]>;
  /**
   * Merges histories (as readHistories returns them, a chunk at a time so a long history never sits in memory
   * whole) in one transaction: pins an unpinned database to `genesisValidatorsRoot` (refuses another network),
   * merges every record as an interchange import would, and raises each validator's explicit watermarks to the
   * given ones. All of it, or nothing. Chunks in pubkey order keep PostgreSQL's row locks in pubkey order.
   */
  writeHistories(genesisValidatorsRoot: string, chunks: AsyncIterable<ValidatorHistory[]>): Promise<ImportSummary>;
  close(): Promise<void>;
}

/** Histories as a parsed interchange carrying every record (the watermarks travel separately). */
export function historiesAsInterchange(genesisValidatorsRoot: Buffer, histories: ValidatorHistory[]): ParsedInterchange {
  return {
    genesisValidatorsRoot,
    records: histories.map((h) => ({
      pubkey: h.pubkey,
      blocks: h.blocks.map((b) => ({ slot: b.slot, signingRoot: b.root })),
      attestations: h.attestations.map((a) => ({ source: a.source, target: a.target, signingRoot: a.root })),
    })),
  };
}

/** Whether a validator has any explicit low watermark (only those get a watermarks row). */
export function hasMarks(h: ValidatorHistory): boolean {
  return h.marks.blockSlot !== null || h.marks.sourceEpoch !== null || h.marks.targetEpoch !== null;
}

/** Adds one summary into another (chunked writes). */
export function addSummary(total: ImportSummary, part: ImportSummary): void {
  total.validators += part.validators;
  total.blocksAdded += part.blocksAdded;
  total.attestationsAdded += part.attestationsAdded;
  total.conflictsMadeUnknown += part.conflictsMadeUnknown;
}
