import fs from "node:fs";
import type Database from "better-sqlite3";
import { bytesToHex, normalizeHex } from "../common/index.js";
import { checkBytes, parseHexBytes, parsePubkey, parseSigningRoot, parseUint64 } from "./codec.js";
import {
  classifyDbFailure,
  SlashingDbInputError,
  SlashingDbUnavailableError,
  SlashingProtectionError,
  InterchangeError,
  type DbFailureCause,
  type RefusalDetails,
} from "./errors.js";
import { BackgroundCheckpointer } from "./checkpointer.js";
import { GroupCommitter, type BatchStats } from "./group-commit.js";
import { readAllHighWatermarkSqlite, type HighWatermark } from "./high-watermark.js";
import { HistoryQueries, NO_WATERMARKS, type AttestationSnapshot, type BlockSnapshot, type LowWatermarks } from "./history.js";
import { exportInterchange, type Interchange } from "./interchange/export.js";
import { mergeInterchange, type ImportSummary } from "./interchange/import.js";
import { parseInterchange } from "./interchange/parse.js";
import { pruneHistory, type PruneOptions, type PruneSummary } from "./prune.js";
import { judgeAttestation, judgeBlock, type Verdict } from "./rules.js";
import { SCHEMA_VERSION } from "./schema.js";
import { openSqliteFile } from "./sqlite-file.js";
import type { SlashableCheck } from "./protection.js";
import { assertOpen, assertUsable } from "./guards.js";
import { decodeSharingNonce, encodeSharingNonce, HISTORY_ID_KEY, SHARING_NONCE_KEY, SHARING_NONCE_PATTERN, type SharingNonce } from "./identity.js";

export interface SlashingDbOptions {
  /**
   * The network this database protects. A new database is pinned to it; an existing one pinned to another
   * root refuses to open. Omit it to open whatever the file is pinned to (or leave a new file unpinned
   * until pinGenesisValidatorsRoot / an interchange import pins it; until then every check is refused).
   */
  genesisValidatorsRoot?: string;
  /** Most checks committed in one transaction (default 1024). */
  maxBatch?: number;
  /** Called after every group commit, for metrics. */
  onCommit?: (stats: BatchStats) => void;
  /**
   * Checkpoint the WAL from a worker thread instead of during commits (long-running signers: keeps the
   * checkpoint's page writes and fsync out of every check's latency). Short-lived CLI use leaves it off.
   */
  checkpointInBackground?: boolean;
}

/** "recorded": new and now on disk; "repeat": exactly a message already recorded (safe to sign again). */
export type CheckOutcome = "recorded" | "repeat";

export interface SlashingDbStats {
  path: string;
  schemaVersion: number;
  genesisValidatorsRoot: string | null;
  validators: number;
  blocks: number;
  attestations: number;
  fileBytes: number;
}

const GVR_KEY = "genesis_validators_root";
/** The metadata row the health probe rewrites. */
const HEALTH_PROBE_KEY = "health_probe";

/**
 * SQLite reports a write refused by the filesystem (read-only, e.g. ext4 after an error) as a generic I/O error
 * without the errno; one byte written to a scratch file next to the database tells which. Runs only after a
 * failed commit.
 */
function diagnoseWriteFailure(err: unknown, file: string): DbFailureCause {
  const cause = classifyDbFailure(err);
  if (cause !== "IO_ERROR" && cause !== "UNKNOWN") return cause;
  const scratch = `${file}.write-probe`;
  try {
    fs.writeFileSync(scratch, "x", { mode: 0o600 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EROFS" || code === "EACCES" || code === "EPERM") return "READ_ONLY";
    if (code === "ENOSPC" || code === "EDQUOT") return "DISK_FULL";
    if (code === "ENOENT") return "FILE_GONE";
  } finally {
    try {
      fs.rmSync(scratch, { force: true });
    } catch {
      /* a read-only filesystem cannot have created it */
    }
  }
  return cause;
}

/** device:inode of `file` (undefined for ":memory:"-like paths that are not files). */
function fileIdentity(file: string, mustExist = false): string | undefined {
  try {
    const st = fs.statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    if (mustExist) throw err;
    return undefined;
  }
}
/** What a validator the database has never seen looks like to the rules. */
const EMPTY_BLOCK_HISTORY: BlockSnapshot = { recordedRoot: undefined, watermarks: NO_WATERMARKS, highSlot: null };
const EMPTY_ATTESTATION_HISTORY: AttestationSnapshot = {
  exactRepeat: false,
  votesAtTarget: 0,
  watermarks: NO_WATERMARKS,
  surroundedByNew: null,
  surroundingNew: null,
  highEpoch: null,
};

export class SlashingDb {
  private readonly db: Database.Database;
  private readonly history: HistoryQueries;
  private readonly committer: GroupCommitter;
  private readonly checkpointer: BackgroundCheckpointer | null;
  private readonly validatorIds = new Map<string, bigint>(); // hex pubkey -> row id; ids never change
  private pinnedRoot: string | null;
  private closed = false;
  /** The file this connection opened: a record written after it was deleted or replaced would vanish on restart. */
  private readonly fileIdentity: string | undefined;

  constructor(
    readonly path: string,
    opts: SlashingDbOptions = {},
  ) {
    this.db = openSqliteFile(path);
    this.fileIdentity = fileIdentity(path);
    this.history = new HistoryQueries(this.db);
    this.committer = new GroupCommitter(
      this.db,
      opts.maxBatch ?? 1024,
      opts.onCommit,
      () => this.assertFileStillThere(),
      (err) => diagnoseWriteFailure(err, path),
    );
    this.checkpointer = opts.checkpointInBackground ? new BackgroundCheckpointer(this.db, path) : null;
    this.pinnedRoot = this.readPinnedRoot();
    if (opts.genesisValidatorsRoot !== undefined) {
      try {
        this.pinGenesisValidatorsRoot(opts.genesisValidatorsRoot);
      } catch (err) {
        this.close();
        throw err;
      }
    }
  }

  /** The network this database is pinned to (lower-case 0x hex), or null while unpinned. */
  get genesisValidatorsRoot(): string | null {
    return this.pinnedRoot;
  }

  /** This database's history id (made by the schema migration; a copy of the file keeps it: ./identity.ts). */
  get historyId(): string {
    return this.readMetadata(HISTORY_ID_KEY) ?? "";
  }

  /** The latest sharing nonce written into this file, read from the file (not remembered). */
  readSharingNonce(): SharingNonce | null {
    return decodeSharingNonce(this.readMetadata(SHARING_NONCE_KEY));
  }

  /** Writes a sharing nonce, committed before it returns (the watchdog reads it back through another signer). */
  writeSharingNonce(nonce: string): void {
    this.assertOpen();
    if (!SHARING_NONCE_PATTERN.test(nonce)) throw new SlashingDbInputError("nonce", "must be 32 to 64 lower-case hex digits");
    this.db
      .prepare("INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .run(SHARING_NONCE_KEY, encodeSharingNonce(nonce));
  }

  /** Checks waiting for the next group commit (a gauge for metrics and back-pressure). */
  get queueDepth(): number {
    return this.committer.queueDepth;
  }

  /** Pins the database to a network; idempotent for the same root, refused for another. */
  pinGenesisValidatorsRoot(root: string): void {
    const normalized = bytesToHex(parseHexBytes(root, 32, "genesisValidatorsRoot"));
    this.db
      .transaction(() => {
        const stored = this.readPinnedRoot();
        if (stored === null) {
          this.db.prepare("INSERT INTO metadata (key, value) VALUES (?, ?)").run(GVR_KEY, normalized);
        } else if (stored !== normalized) {
          throw new SlashingProtectionError(
            "GENESIS_VALIDATORS_ROOT_MISMATCH",
            `this slashing database belongs to the network with genesis_validators_root ${stored}, not ${normalized}`,
          );
        }
      })
      .immediate();
    this.pinnedRoot = normalized;
  }

  /** Refuses a block unless it is safe under the complete strategy; resolves only once recorded durably. */
  async checkAndRecordBlock(pubkey: string, slot: bigint | number | string, signingRoot?: string): Promise<CheckOutcome> {
    return this.recordBlock(parsePubkey(pubkey), parseUint64(slot, "slot"), parseSigningRoot(signingRoot, "signingRoot"));
  }

  /** checkAndRecordBlock / checkAndRecordAttestation for a check whose key and root are already bytes (no hex). */
  async checkAndRecord(check: SlashableCheck): Promise<CheckOutcome> {
    const key = checkBytes(check.pubkey, 48, "pubkey");
    const root = checkBytes(check.signingRoot, 32, "signingRoot");
    if (check.kind === "block") return this.recordBlock(key, parseUint64(check.slot, "slot"), root);
    return this.recordAttestation(key, parseUint64(check.sourceEpoch, "sourceEpoch"), parseUint64(check.targetEpoch, "targetEpoch"), root);
  }

  private async recordBlock(key: Buffer, slotValue: bigint, root: Buffer | null): Promise<CheckOutcome> {
    this.assertUsable();
    return this.commit(
      () => ({ pubkey: bytesToHex(key), slot: slotValue }),
      () => {
        const id = this.validatorId(key, true)!;
        const verdict = judgeBlock(this.history.blockSnapshot(id, slotValue), slotValue, root);
        if (verdict.kind === "new") this.history.insertBlock(id, slotValue, root);
        return verdict;
      },
    );
  }

  /** Refuses an attestation unless it is safe under the complete strategy; resolves only once recorded durably. */
  async checkAndRecordAttestation(
    pubkey: string,
    sourceEpoch: bigint | number | string,
    targetEpoch: bigint | number | string,
    signingRoot?: string,
  ): Promise<CheckOutcome> {
    return this.recordAttestation(
      parsePubkey(pubkey),
      parseUint64(sourceEpoch, "sourceEpoch"),
      parseUint64(targetEpoch, "targetEpoch"),
      parseSigningRoot(signingRoot, "signingRoot"),
    );
  }

  private async recordAttestation(key: Buffer, source: bigint, target: bigint, root: Buffer | null): Promise<CheckOutcome> {
    this.assertUsable();
    return this.commit(
      () => ({ pubkey: bytesToHex(key), source, target }),
      () => {
        const id = this.validatorId(key, true)!;
        const verdict = judgeAttestation(this.history.attestationSnapshot(id, source, target, root), source, target);
        if (verdict.kind === "new") this.history.insertAttestation(id, source, target, root);
        return verdict;
      },
    );
  }

  /** What checkAndRecordBlock would answer now, recording nothing (for dry runs and status). */
  judgeBlock(pubkey: string, slot: bigint | number | string, signingRoot?: string): Verdict {
    this.assertOpen();
    const id = this.validatorId(parsePubkey(pubkey), false);
    const slotValue = parseUint64(slot, "slot");
    const root = parseSigningRoot(signingRoot, "signingRoot");
    return judgeBlock(id === null ? EMPTY_BLOCK_HISTORY : this.history.blockSnapshot(id, slotValue), slotValue, root);
  }

  /** What checkAndRecordAttestation would answer now, recording nothing. */
  judgeAttestation(pubkey: string, sourceEpoch: bigint | number | string, targetEpoch: bigint | number | string, signingRoot?: string): Verdict {
    this.assertOpen();
    const id = this.validatorId(parsePubkey(pubkey), false);
    const source = parseUint64(sourceEpoch, "sourceEpoch");
    const target = parseUint64(targetEpoch, "targetEpoch");
    const root = parseSigningRoot(signingRoot, "signingRoot");
    return judgeAttestation(id === null ? EMPTY_ATTESTATION_HISTORY : this.history.attestationSnapshot(id, source, target, root), source, target);
  }

  /**
   * Raises the low watermarks of the given validators (all known ones if omitted): afterwards no block at or
   * below `slot`, and no attestation with source below or target at or below `epoch`, is signed. Never lowers.
   * Used when a stack takes over without the full history of the one before it.
   */
  raiseLowWatermarks(opts: { pubkeys?: string[]; slot?: bigint | number | string; epoch?: bigint | number | string }): number {
    this.assertOpen();
    const slot = opts.slot === undefined ? null : parseUint64(opts.slot, "slot");
    const epoch = opts.epoch === undefined ? null : parseUint64(opts.epoch, "epoch");
    const marks: LowWatermarks = { blockSlot: slot, sourceEpoch: epoch, targetEpoch: epoch };
    const keys = opts.pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`));
    try {
      return this.db
        .transaction(() => {
          const ids = keys
            ? keys.map((k) => this.validatorId(k, true)!)
            : this.db
                .prepare<[], { id: bigint }>("SELECT id FROM validators")
                .all()
                .map((r) => r.id);
          for (const id of ids) this.history.raiseWatermarks(id, marks);
          return ids.length;
        })
        .immediate();
    } catch (err) {
      this.validatorIds.clear(); // ids registered by the rolled-back transaction are gone
      throw err;
    }
  }

  /** The high watermark of every validator (./high-watermark.ts), read from the file now; null when none is set. */
  highWatermark(): HighWatermark | null {
    this.assertOpen();
    return readAllHighWatermarkSqlite(this.db);
  }

  /** Imports an EIP-3076 interchange (v5) atomically: all of it, or nothing if any part is invalid. */
  importInterchange(interchange: object | string): ImportSummary {
    this.assertOpen();
    const parsed = parseInterchange(interchange);
    const root = bytesToHex(parsed.genesisValidatorsRoot);
    if (this.pinnedRoot !== null && this.pinnedRoot !== root) {
      throw new InterchangeError(
        "GENESIS_VALIDATORS_ROOT_MISMATCH",
        "metadata.genesis_validators_root",
        `is ${root} but this database belongs to the network ${this.pinnedRoot}`,
      );
    }
    let summary!: ImportSummary;
    this.db
      .transaction(() => {
        if (this.pinnedRoot === null) this.pinGenesisValidatorsRoot(root);
        summary = mergeInterchange(this.history, parsed);
      })
      .immediate();
    return summary;
  }

  /** Exports the history as an EIP-3076 interchange: all validators or the given ones, complete or minified. */
  exportInterchange(opts: { pubkeys?: string[]; minify?: boolean } = {}): Interchange {
    this.assertOpen();
    if (this.pinnedRoot === null) {
      throw new SlashingProtectionError("GENESIS_VALIDATORS_ROOT_UNKNOWN", "the database is not pinned to a network yet; nothing to export");
    }
    const pubkeys = opts.pubkeys?.map((p, i) => parsePubkey(p, `pubkeys[${i}]`));
    // One read transaction: the export is a consistent snapshot even while the signer writes.
    return this.db.transaction(() => exportInterchange(this.db, this.pinnedRoot!, { pubkeys, minify: opts.minify })).deferred();
  }

  /** Deletes history older than opts.keepEpochs per validator, raising watermarks so protection is unchanged. */
  prune(opts: PruneOptions): PruneSummary {
    this.assertOpen();
    return pruneHistory(this.db, this.history, opts);
  }

  stats(): SlashingDbStats {
    this.assertOpen();
    const count = (table: string) => Number(this.db.prepare<[], { n: bigint }>(`SELECT COUNT(*) AS n FROM ${table}`).get()!.n);
    let fileBytes = 0;
    for (const suffix of ["", "-wal"]) {
      try {
        fileBytes += fs.statSync(this.path + suffix).size;
      } catch {
        /* no WAL file right now */
      }
    }
    return {
      path: this.path,
      schemaVersion: SCHEMA_VERSION,
      genesisValidatorsRoot: this.pinnedRoot,
      validators: count("validators"),
      blocks: count("signed_blocks"),
      attestations: count("signed_attestations"),
      fileBytes,
    };
  }

  /** True if the database answers a trivial query (for health checks). */
  isHealthy(): boolean {
    if (this.closed) return false;
    try {
      this.db.prepare("SELECT 1").get();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A real write transaction through the group commit (one metadata row, replaced in place, so the file does not
   * grow): resolves only if a check could be recorded durably now; rejects with the failure otherwise.
   */
  async probeWrite(): Promise<void> {
    this.assertOpen();
    await this.committer.submit(() => {
      this.db
        .prepare("INSERT INTO metadata (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        .run(HEALTH_PROBE_KEY, String(Date.now()));
    });
  }

  /** Why the latest commit failed (disk full, read-only, I/O error), or undefined if it succeeded. */
  get lastCommitFailure(): SlashingDbUnavailableError | undefined {
    return this.committer.lastFailure;
  }

  /** Commits every check still queued, then closes the file. */
  close(): void {
    if (this.closed) return;
    this.closeConnection();
    void this.checkpointer?.stop(); // its final checkpoint runs on its own connection; nothing waits for it
  }

  /**
   * close(), then waits (bounded) for the background checkpointer's last checkpoint and thread exit. Resolves
   * with what went wrong — a final commit or checkpoint that failed, the latest commit having failed (disk full,
   * read-only) — or [] when closed cleanly. Every check answered "allowed" is durable either way (in the WAL,
   * which the next open replays).
   */
  async closeAndReport(timeoutMs?: number): Promise<string[]> {
    if (this.closed) return [];
    const problems = this.closeConnection();
    const checkpoint = await this.checkpointer?.stop(timeoutMs);
    if (checkpoint) problems.push(checkpoint);
    return problems;
  }

  private closeConnection(): string[] {
    const problems: string[] = [];
    const failed = this.committer.drainAndClose();
    if (failed > 0) problems.push(`${failed} queued check(s) could not be committed while closing; none was signed`);
    else if (this.committer.lastFailure) problems.push(`the latest commit failed: ${this.committer.lastFailure.message}`);
    this.closed = true;
    try {
      this.db.close();
    } catch (err) {
      problems.push(`closing the database failed: ${(err as Error).message}`);
    }
    return problems;
  }

  /**
   * The validator's row id (registering it inside the current write transaction if asked). Ids never
   * change once committed; if a batch rolls back, `commit` clears this cache so no id of a rolled-back
   * insert survives.
   */
  private validatorId(pubkey: Buffer, register: boolean): bigint | null {
    const hex = pubkey.toString("hex");
    const cached = this.validatorIds.get(hex);
    if (cached !== undefined) return cached;
    const id = register ? this.history.registerValidator(pubkey) : this.history.findValidator(pubkey);
    if (id !== null) this.validatorIds.set(hex, id);
    return id;
  }

  /** Runs `work` in the next group commit; on a failed commit forgets cached ids, then fails closed. */
  private async commit(message: () => RefusalDetails, work: () => Verdict): Promise<CheckOutcome> {
    let verdict: Verdict;
    try {
      verdict = await this.committer.submit(work);
    } catch (err) {
      this.validatorIds.clear();
      throw err;
    }
    return settle(verdict, message);
  }

  /** Fails the batch (nothing recorded, nobody signs) if the database file was deleted or replaced since open. */
  private assertFileStillThere(): void {
    if (this.fileIdentity === undefined) return;
    let now: string | undefined;
    try {
      now = fileIdentity(this.path, true);
    } catch {
      now = undefined;
    }
    if (now !== this.fileIdentity) {
      throw new SlashingDbUnavailableError(
        "DB_WRITE_FAILED",
        `the slashing database file ${this.path} was deleted or replaced while open; refusing to record into a file that is gone`,
        "FILE_GONE",
      );
    }
  }

  private assertOpen(): void {
    assertOpen(this.closed);
  }

  private assertUsable(): void {
    assertUsable(this.closed, this.pinnedRoot);
  }

  private readMetadata(key: string): string | undefined {
    return this.db.prepare<[string], { value: string }>("SELECT value FROM metadata WHERE key = ?").get(key)?.value;
  }

  private readPinnedRoot(): string | null {
    const row = this.db.prepare<[string], { value: string }>("SELECT value FROM metadata WHERE key = ?").get(GVR_KEY);
    return row ? normalizeHex(row.value) : null;
  }
}

/** `message`: the checked message (built only on refusal), carried as fields next to what it collided with. */
function settle(verdict: Verdict, message: () => RefusalDetails): CheckOutcome {
  if (verdict.kind === "refused") {
    const details = message();
    throw new SlashingProtectionError(verdict.code, verdict.reason, verdict.existing ? { ...details, existing: verdict.existing } : details);
  }
  return verdict.kind === "new" ? "recorded" : "repeat";
}

export function openSlashingDb(path: string, opts: SlashingDbOptions = {}): SlashingDb {
  return new SlashingDb(path, opts);
}
