// Scenario 1: Lodestar v1.5.1 (a validator client nobody on this team wrote) runs a minimal-preset devnet and
// signs only through `vigil signer start`, whose keys (interop 0..7) live on a SoftHSM2 token. Checked: a
// block in every slot, finality, every released signature BLS-valid and on chain where it should be, and
// every block and attestation in the slashing database; plus the systemd life cycle (READY=1 only once
// serving, STOPPING=1 and exit 0 on SIGTERM).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChainWatcher,
  interopPubkeyHex,
  readFeed,
  say,
  SLOT_SECONDS,
  SLOTS_PER_EPOCH,
  slashingDbCoverage,
  startDevnet,
  startSignerProcess,
  stopSignerGracefully,
  tokenWithInteropKeysViaCli,
  VALIDATORS,
  verifyFeed,
  waitFor,
  type Devnet,
  type E2eToken,
  type SignerProc,
} from "./harness.js";
import { ensureLodestar } from "./lodestar.js";

const MIN_FINALIZED = 3;

describe("scenario 1: Lodestar v1.5.1 signs only through Vigil's signer", () => {
  let lodestar: string;
  let dir: string;
  let token: E2eToken | undefined;
  let signer: SignerProc | undefined;
  let devnet: Devnet | undefined;
  let passed = false;

  beforeAll(() => {
    lodestar = ensureLodestar();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-e2e-signer-"));
    say(`scenario 1 working directory (logs): ${dir}`);
  });

  afterAll(async () => {
    await devnet?.kill();
    if (signer && !signer.proc.exitStatus) signer.proc.child.kill("SIGKILL");
    signer?.notify?.close();
    token?.token.destroy();
    if (passed && !process.env.VIGIL_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    else say(`logs kept in ${dir}`);
  });

  it("produces a block every slot, finalizes, and every signature is valid and recorded", async () => {
    token = await tokenWithInteropKeysViaCli(`vigil-e2e-1-${process.pid}`.slice(0, 32), VALIDATORS, dir);
    const expectedKeys = Array.from({ length: VALIDATORS }, (_, i) => interopPubkeyHex(i));
    expect([...token.pubkeys].sort()).toEqual([...expectedKeys].sort());

    signer = await startSignerProcess(dir, token, ["vc1"]);
    const pubkeysServed = (await (await fetch(`${signer.clientUrls.vc1}/api/v1/eth2/publicKeys`)).json()) as string[];
    expect(pubkeysServed.map((k) => k.toLowerCase()).sort()).toEqual([...expectedKeys].sort());

    const started = Date.now();
    devnet = await startDevnet(lodestar, dir, { SIGNER_URL: signer.clientUrls.vc1!, DURATION: "600" });
    const watcher = new ChainWatcher(devnet.bnUrl);
    watcher.start();
    let lastReport = 0;
    await waitFor(
      `finalized epoch ≥ ${MIN_FINALIZED}`,
      () => {
        if (devnet!.proc.exitStatus) throw new Error(`the devnet stopped early; see ${devnet!.workDir}/logs`);
        if (Date.now() - lastReport > 16_000) {
          lastReport = Date.now();
          say(
            `head slot ${watcher.headSlot}, justified ${watcher.justifiedEpoch}, finalized ${watcher.finalizedEpoch}, blocks ${watcher.blocks.size}/${watcher.settledSlots()}`,
          );
        }
        return watcher.finalizedEpoch >= MIN_FINALIZED;
      },
      (MIN_FINALIZED + 6) * SLOTS_PER_EPOCH * SLOT_SECONDS * 1000,
    );
    await watcher.stop();
    const pools = await watcher.slashingsInPool();
    await devnet.kill();
    const runSeconds = (Date.now() - started) / 1000;

    // Every signature the signer released: valid, and the chain's blocks are among them.
    const feed = await readFeed(signer);
    const sigs = verifyFeed(feed);
    const blockSigs = new Set(feed.filter((e) => e.type === "BLOCK_V2" || e.type === "BLOCK").map((e) => e.signature.toLowerCase()));
    const slots = watcher.settledSlots();
    const empty = [...watcher.emptySlots].sort((a, b) => a - b);
    const onChainNotFromVigil = [...watcher.blocks.values()].filter((b) => !blockSigs.has(b.signature));

    const stop = await stopSignerGracefully(signer);
    const db = slashingDbCoverage(signer.slashingDb, feed);

    say(
      `scenario 1: ${runSeconds.toFixed(0)} s of devnet; blocks ${watcher.blocks.size}/${slots} slots (empty: ${empty.join(",") || "none"}); ` +
        `finalized epoch ${watcher.finalizedEpoch}; signatures ${feed.length} (${Object.entries(sigs.byType)
          .map(([t, n]) => `${t} ${n}`)
          .join(", ")}), ` +
        `${sigs.invalid.length} invalid; slashing db holds ${db.blocks - db.missing.filter((m) => m.startsWith("block")).length}/${db.blocks} blocks and ` +
        `${db.attestations - db.missing.filter((m) => m.startsWith("attestation")).length}/${db.attestations} attestations; signer stopped with exit ${stop.code} in ${stop.ms} ms` +
        (stop.stoppingSent === undefined
          ? ""
          : `, STOPPING=1 ${stop.stoppingSent ? "sent" : "NOT sent"}, ${stop.watchdogPings} WATCHDOG=1 pings, ${stop.unhealthy.length} unhealthy reports`),
    );

    expect(slots).toBeGreaterThanOrEqual((MIN_FINALIZED + 1) * SLOTS_PER_EPOCH);
    expect(empty, "slots without a block").toEqual([]);
    expect(watcher.finalizedEpoch).toBeGreaterThanOrEqual(MIN_FINALIZED);
    expect(sigs.invalid, "invalid signatures").toEqual([]);
    expect(sigs.byType.ATTESTATION ?? 0).toBeGreaterThan(0);
    expect(onChainNotFromVigil, "blocks on chain not signed by Vigil").toEqual([]);
    expect(pools).toEqual({ proposer: 0, attester: 0 });
    expect(db.missing, "released signatures missing from the slashing database").toEqual([]);
    expect(db.blocks).toBeGreaterThanOrEqual(watcher.blocks.size);
    expect(stop.code).toBe(0);
    if (stop.stoppingSent !== undefined) {
      expect(stop.stoppingSent).toBe(true);
      // WatchdogSec=10 s here: a ping every 5 s throughout, never withheld under signing load
      expect(stop.watchdogPings).toBeGreaterThanOrEqual(Math.floor(runSeconds / 5) - 2);
      expect(stop.unhealthy).toEqual([]);
    }
    passed = true;
  });
});
