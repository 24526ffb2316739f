/**
 * The database when its file or disk fails: a file deleted under an open connection records nothing more (a
 * record written into a vanished file is lost at restart), failures carry their cause, and closing reports
 * whether it was clean — including the background checkpoint thread, which stops by itself.
 */
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { SlashingDbUnavailableError, openSlashingDb } from "../../slashing-db/index.js";
import { freshDbPath, tempDir } from "../helpers/tmp.js";

const GVR = `0x${"33".repeat(32)}`;
const PK = `0x${"ab".repeat(48)}`;
const dir = tempDir();

async function failure(p: Promise<unknown>): Promise<SlashingDbUnavailableError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(SlashingDbUnavailableError);
    return err as SlashingDbUnavailableError;
  }
  throw new Error("expected the database to fail");
}

describe("slashing database failures", () => {
  it("a file deleted while open: checks and the write probe fail with FILE_GONE; nothing is recorded", async () => {
    const file = freshDbPath(dir);
    const db = openSlashingDb(file, { genesisValidatorsRoot: GVR });
    try {
      expect(await db.checkAndRecordAttestation(PK, 1, 2)).toBe("recorded");
      await db.probeWrite();
      for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(file + suffix, { force: true });
      const err = await failure(db.checkAndRecordAttestation(PK, 2, 3));
      expect(err.code).toBe("DB_WRITE_FAILED");
      expect(err.failure).toBe("FILE_GONE");
      expect((await failure(db.probeWrite())).failure).toBe("FILE_GONE");
      expect(db.lastCommitFailure?.failure).toBe("FILE_GONE");
    } finally {
      expect(await db.closeAndReport()).toEqual([expect.stringContaining("latest commit failed")]);
    }
  });

  it("a file replaced by another one at the same path counts as gone", async () => {
    const file = freshDbPath(dir);
    const db = openSlashingDb(file, { genesisValidatorsRoot: GVR });
    fs.renameSync(file, `${file}.moved`);
    fs.copyFileSync(`${file}.moved`, file);
    expect((await failure(db.checkAndRecordBlock(PK, 5))).failure).toBe("FILE_GONE");
    db.close();
  });

  it("a healthy close reports nothing, with the background checkpointer stopped and its thread ended", async () => {
    const file = freshDbPath(dir);
    const db = openSlashingDb(file, { genesisValidatorsRoot: GVR, checkpointInBackground: true });
    for (let t = 1; t <= 50; t++) await db.checkAndRecordAttestation(PK, t - 1, t);
    const started = Date.now();
    expect(await db.closeAndReport()).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
    const reopened = openSlashingDb(file);
    expect(reopened.stats().attestations).toBe(50);
    reopened.close();
  });
});
