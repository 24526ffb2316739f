/**
 * One small async handle over either slashing-protection backend, opened from a SlashingDbLocation: SQLite
 * (SlashingDb on a file) or PostgreSQL (PostgresSlashingProtection). Free of vitest, so a child process
 * (test/slashing-db/child-recorder.ts) opens a backend exactly as the test files do. Keys, roots, slots and
 * epochs are given as the tests write them (hex, decimal); an absent root is unknown.
 */
import Database from "better-sqlite3";
import pg from "pg";
import { hexToBytes } from "../../common/index.js";
import {
  PostgresSlashingProtection,
  openSlashingDb,
  openSlashingDbAdmin,
  openSlashingProtection,
  type BatchStats,
  type CheckOutcome,
  type CheckWithAnyRoot,
  type ImportSummary,
  type Interchange,
  type SlashingDbAdmin,
  type SlashingDbLocation,
  type SlashingProtection,
  type Verdict,
} from "../../slashing-db/index.js";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";

type Uint = bigint | number | string;

export interface RecordedRows {
  blocks: { slot: bigint; root: string | undefined }[];
  atts: { source: bigint; target: bigint; root: string | undefined }[];
}

export interface BackendHandle {
  block(pubkey: string, slot: Uint, root?: string): Promise<CheckOutcome>;
  att(pubkey: string, source: Uint, target: Uint, root?: string): Promise<CheckOutcome>;
  /** Dry runs: would it be allowed now (recording nothing)? */
  allowsBlock(pubkey: string, slot: Uint, root?: string): Promise<boolean>;
  allowsAtt(pubkey: string, source: Uint, target: Uint, root?: string): Promise<boolean>;
  /** Dry run: what an attestation would get now ("repeat" iff exactly this one is recorded). */
  attVerdict(pubkey: string, source: Uint, target: Uint, root?: string): Promise<Verdict["kind"]>;
  raise(pubkey: string, slot: Uint, epoch: Uint): Promise<void>;
  importInterchange(interchange: object | string): Promise<ImportSummary>;
  exportInterchange(opts?: { minify?: boolean }): Promise<Interchange>;
  /** The rows as stored, per validator (not the export, which adds watermark records). */
  rows(): Promise<RecordedRows[]>;
  /** The operator's handle (prune, stats, raw history) on the same database, opened beside this one. */
  admin(): Promise<SlashingDbAdmin>;
  close(): Promise<void>;
}

const hex = (b: Buffer | null) => (b ? `0x${b.toString("hex")}` : undefined);
const bytes = (root?: string) => (root === undefined ? null : hexToBytes(root));

/** The SlashingProtection a signer uses on `location` (the signer's own factory). */
export async function openProtection(
  location: SlashingDbLocation,
  opts: { genesisValidatorsRoot?: string; onCommit?: (s: BatchStats) => void } = {},
): Promise<SlashingProtection> {
  return openSlashingProtection(location, opts);
}

/** Opens the backend at `location`; pins it to `genesisValidatorsRoot` when given. */
export async function openHandle(location: SlashingDbLocation, genesisValidatorsRoot?: string): Promise<BackendHandle> {
  return location.kind === "sqlite" ? openSqlite(location.path, genesisValidatorsRoot) : openPostgres(location.connection, genesisValidatorsRoot);
}

function openSqlite(file: string, gvr: string | undefined): BackendHandle {
  const db = openSlashingDb(file, gvr === undefined ? {} : { genesisValidatorsRoot: gvr });
  return {
    block: (pk, slot, root) => db.checkAndRecordBlock(pk, slot, root),
    att: (pk, s, t, root) => db.checkAndRecordAttestation(pk, s, t, root),
    allowsBlock: async (pk, slot, root) => db.judgeBlock(pk, slot, root).kind !== "refused",
    allowsAtt: async (pk, s, t, root) => db.judgeAttestation(pk, s, t, root).kind !== "refused",
    attVerdict: async (pk, s, t, root) => db.judgeAttestation(pk, s, t, root).kind,
    raise: async (pk, slot, epoch) => void db.raiseLowWatermarks({ pubkeys: [pk], slot, epoch }),
    importInterchange: async (x) => db.importInterchange(x),
    exportInterchange: async (opts) => db.exportInterchange(opts),
    rows: async () => {
      const raw = new Database(db.path, { readonly: true });
      try {
        const ids = raw.prepare("SELECT id FROM validators").all() as { id: number }[];
        return ids.map(({ id }) => ({
          blocks: (
            raw.prepare("SELECT slot, signing_root FROM signed_blocks WHERE validator_id = ?").all(id) as { slot: number; signing_root: Buffer | null }[]
          ).map((r) => ({ slot: BigInt(r.slot), root: hex(r.signing_root) })),
          atts: (
            raw.prepare("SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = ?").all(id) as {
              source_epoch: number;
              target_epoch: number;
              signing_root: Buffer | null;
            }[]
          ).map((r) => ({ source: BigInt(r.source_epoch), target: BigInt(r.target_epoch), root: hex(r.signing_root) })),
        }));
      } finally {
        raw.close();
      }
    },
    admin: () => openSlashingDbAdmin({ kind: "sqlite", path: db.path }, { mustExist: true }),
    close: async () => db.close(),
  };
}

/** Reads the rows of one PostgreSQL database through the given connection. */
export async function readPostgresRows(c: pg.ClientBase): Promise<RecordedRows[]> {
  const ids = (await c.query<{ id: string }>("SELECT id::text FROM validators")).rows;
  const out: RecordedRows[] = [];
  for (const { id } of ids) {
    const blocks = await c.query<{ slot: string; signing_root: Buffer | null }>("SELECT slot::text, signing_root FROM signed_blocks WHERE validator_id = $1", [
      id,
    ]);
    const atts = await c.query<{ s: string; t: string; signing_root: Buffer | null }>(
      "SELECT source_epoch::text AS s, target_epoch::text AS t, signing_root FROM signed_attestations WHERE validator_id = $1",
      [id],
    );
    out.push({
      blocks: blocks.rows.map((r) => ({ slot: BigInt(r.slot), root: hex(r.signing_root) })),
      atts: atts.rows.map((r) => ({ source: BigInt(r.s), target: BigInt(r.t), root: hex(r.signing_root) })),
    });
  }
  return out;
}

async function openPostgres(connection: Extract<SlashingDbLocation, { kind: "postgres" }>["connection"], gvr: string | undefined): Promise<BackendHandle> {
  const p = await PostgresSlashingProtection.open({ poolSize: 2, ...connection }, gvr === undefined ? {} : { genesisValidatorsRoot: gvr });
  const blockCheck = (pk: string, slot: Uint, root?: string): CheckWithAnyRoot => ({
    kind: "block",
    pubkey: hexToBytes(pk),
    slot: BigInt(slot),
    signingRoot: bytes(root),
  });
  const attCheck = (pk: string, s: Uint, t: Uint, root?: string): CheckWithAnyRoot => ({
    kind: "attestation",
    pubkey: hexToBytes(pk),
    sourceEpoch: BigInt(s),
    targetEpoch: BigInt(t),
    signingRoot: bytes(root),
  });
  return {
    block: (pk, slot, root) => p.checkAndRecord(blockCheck(pk, slot, root)),
    att: (pk, s, t, root) => p.checkAndRecord(attCheck(pk, s, t, root)),
    allowsBlock: async (pk, slot, root) => (await p.judge(blockCheck(pk, slot, root))).kind !== "refused",
    allowsAtt: async (pk, s, t, root) => (await p.judge(attCheck(pk, s, t, root))).kind !== "refused",
    attVerdict: async (pk, s, t, root) => (await p.judge(attCheck(pk, s, t, root))).kind,
    raise: async (pk, slot, epoch) => void (await p.raiseLowWatermarks({ pubkeys: [pk], slot, epoch })),
    importInterchange: (x) => p.importInterchange(x),
    exportInterchange: (opts) => p.exportInterchange(opts),
    rows: async () => {
      const c = new pg.Client(toPoolConfig(connection));
      await c.connect();
      try {
        return await readPostgresRows(c);
      } finally {
        await c.end();
      }
    },
    admin: () => openSlashingDbAdmin({ kind: "postgres", connection }, { mustExist: true }),
    close: async () => void (await p.close()),
  };
}
