// The signer's SQLite file while another process (the CLI) opens and closes it: the signer's connections must keep
// their locks, so the CLI never takes itself for the last connection and deletes the -wal and -shm files under
// them. It once did: opening a connection began with open()+close() of the database file to create it 0600, and a
// close() drops every POSIX lock the process holds on that file, the other connections' included. The CLI then
// checkpointed and unlinked the WAL at exit, and the signer went on in a WAL nobody else could see: a high
// watermark the CLI set was shown by one connection and ignored by the one that checks.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { openSlashingProtection, type SlashingProtection } from "../../slashing-db/index.js";
import { tempDir } from "../helpers/tmp.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const GVR = `0x${"ab".repeat(32)}`;
const KEY = Buffer.alloc(48, 0xa1);
const root = (n: number) => Buffer.alloc(32, n);
const block = (slot: number) => ({ kind: "block" as const, pubkey: KEY, slot: BigInt(slot), signingRoot: root(slot % 256) });
const attestation = (source: number, target: number) => ({
  kind: "attestation" as const,
  pubkey: KEY,
  sourceEpoch: BigInt(source),
  targetEpoch: BigInt(target),
  signingRoot: root(1),
});
const work = tempDir("vigil-slashing-other-process-");
let protection: SlashingProtection | undefined;

afterAll(async () => {
  await protection?.close();
});

const cli = (args: string[]) => spawnSync(process.execPath, [VIGIL, "slashing", ...args], { encoding: "utf8" });

it("a high watermark set by the CLI binds the running signer's checks; the -wal file stays", async () => {
  const file = path.join(work, "slashing-protection.sqlite");
  // An existing file, as after `vigil keys import --interchange` before the first start.
  const created = await openSlashingProtection({ kind: "sqlite", path: file }, { genesisValidatorsRoot: GVR });
  await created.close();

  protection = await openSlashingProtection({ kind: "sqlite", path: file }, { genesisValidatorsRoot: GVR });
  expect(await protection.checkAndRecord(block(5))).toBe("recorded");
  expect(fs.existsSync(`${file}-wal`)).toBe(true);

  const shown = cli(["watermark", "show", "--db", file]);
  expect(shown.status, shown.stderr).toBe(0);
  expect(fs.existsSync(`${file}-wal`)).toBe(true);
  const set = cli(["watermark", "set-high", "--slot", "240", "--epoch", "30", "--yes", "--db", file]);
  expect(set.status, set.stderr).toBe(0);
  expect(fs.existsSync(`${file}-wal`)).toBe(true);

  expect(await protection.highWatermark()).toEqual({ slot: 240n, epoch: 30n });
  await expect(protection.checkAndRecord(block(250))).rejects.toMatchObject({ code: "BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK" });
  await expect(protection.checkAndRecord(attestation(30, 31))).rejects.toMatchObject({ code: "ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK" });
  expect(await protection.checkAndRecord(block(239))).toBe("recorded");

  // What the signer recorded is what another process reads.
  const exported = cli(["export", "--db", file, "--out", path.join(work, "out.json")]);
  expect(exported.status, exported.stderr).toBe(0);
  const slots = JSON.parse(fs.readFileSync(path.join(work, "out.json"), "utf8")).data[0].signed_blocks.map((b: { slot: string }) => b.slot);
  expect(slots).toEqual(["5", "239"]);
});
