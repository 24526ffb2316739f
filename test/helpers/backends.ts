/**
 * The slashing-protection backends the shared tests run against, behind one small async handle: SQLite
 * (SlashingDb on a temporary file, exactly as before) and PostgreSQL (PostgresSlashingProtection on a fresh
 * database of a private server started for the test file). Keys, roots, slots and epochs are given as the
 * tests write them (hex, decimal); an absent root is unknown.
 */
import Database from "better-sqlite3";
import { afterAll, beforeAll } from "vitest";
import { hexToBytes } from "../../common/index.js";
import {
  PostgresSlashingProtection,
  openSlashingDb,
  openSlashingDbAdmin,
  type CheckOutcome,
  type SlashingDbAdmin,
  type CheckWithAnyRoot,
  type ImportSummary,
  type Interchange,
} from "../../slashing-db/index.js";
import { startPostgres, type TestPostgres } from "./postgres.js";
import { freshDbPath, tempDir } from "./tmp.js";

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
  raise(pubkey: string, slot: Uint, epoch: Uint): Promise<void>;
  importInterchange(interchange: object | string): Promise<ImportSummary>;
  exportInterchange(opts?: { minify?: boolean }): Promise<Interchange>;
  /** The rows as stored, per validator (not the export, which adds watermark records). */
  rows(): Promise<RecordedRows[]>;
  /** The operator's handle (prune, stats, raw history) on the same database, opened beside this one. */
  admin(): Promise<SlashingDbAdmin>;
  close(): Promise<void>;
}

export interface Backend {
  name: "sqlite" | "postgres";
  open(genesisValidatorsRoot: string): Promise<BackendHandle>;
  /** The operator's handle on a new, empty, unpinned database. */
  freshAdmin(): Promise<SlashingDbAdmin>;
}

const hex = (b: Buffer | null) => (b ? `0x${b.toString("hex")}` : undefined);
const bytes = (root?: string) => (root === undefined ? null : hexToBytes(root));

function sqliteBackend(): Backend {
  const dir = tempDir();
  return {
    name: "sqlite",
    async open(gvr) {
      const db = openSlashingDb(freshDbPath(dir), { genesisValidatorsRoot: gvr });
      return {
        block: (pk, slot, root) => db.checkAndRecordBlock(pk, slot, root),
        att: (pk, s, t, root) => db.checkAndRecordAttestation(pk, s, t, root),
        allowsBlock: async (pk, slot, root) => db.judgeBlock(pk, slot, root).kind !== "refused",
        allowsAtt: async (pk, s, t, root) => db.judgeAttestation(pk, s, t, root).kind !== "refused",
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
    },
    freshAdmin: () => openSlashingDbAdmin({ kind: "sqlite", path: freshDbPath(dir) }, { mustExist: false }),
  };
}

/** Reads the rows of one PostgreSQL database through a separate connection. */
export async function postgresRows(server: TestPostgres, url: string): Promise<RecordedRows[]> {
  const c = await server.connect(url);
  try {
    const ids = (await c.query<{ id: string }>("SELECT id::text FROM validators")).rows;
    const out: RecordedRows[] = [];
    for (const { id } of ids) {
      const blocks = await c.query<{ slot: string; signing_root: Buffer | null }>(
        "SELECT slot::text, signing_root FROM signed_blocks WHERE validator_id = $1",
        [id],
      );
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
  } finally {
    await c.end();
  }
}

function postgresBackend(): Backend {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return {
    name: "postgres",
    async open(gvr) {
      const url = await server!.createDatabase();
      const p = await PostgresSlashingProtection.open({ url, passwordFile: server!.passwordFile, poolSize: 2 }, { genesisValidatorsRoot: gvr });
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
        raise: async (pk, slot, epoch) => void (await p.raiseLowWatermarks({ pubkeys: [pk], slot, epoch })),
        importInterchange: (x) => p.importInterchange(x),
        exportInterchange: (opts) => p.exportInterchange(opts),
        rows: () => postgresRows(server!, url),
        admin: () => openSlashingDbAdmin({ kind: "postgres", connection: { url, passwordFile: server!.passwordFile } }, { mustExist: true }),
        close: async () => void (await p.close()),
      };
    },
    freshAdmin: async () =>
      openSlashingDbAdmin({ kind: "postgres", connection: { url: await server!.createDatabase(), passwordFile: server!.passwordFile } }, { mustExist: false }),
  };
}

/** Both backends; call at the top level of a test file (PostgreSQL's server starts in beforeAll). */
export function testBackends(): Backend[] {
  return [sqliteBackend(), postgresBackend()];
}
