// Scenario 2: two Lodestar validator clients with the same keys against one Vigil signer — the primary, and a
// hot-standby backup (graffiti "backup") fenced at the signer — with `vigil watchdog start` in charge. The
// primary is frozen (SIGSTOP: a hung host, whose stop command cannot reach it either). Checked: the watchdog
// fails over and the backup signs, the chain keeps finalizing, the primary's requests after it wakes up are
// refused, and no slashable pair was ever signed (feed, slashing database and the beacon node's pools).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check } from "../watchdog/checker.js";
import { fakeNotifySocket, type FakeNotifySocket } from "../helpers/notify-socket.js";
import {
  admin,
  ChainWatcher,
  NOTIFY_AVAILABLE,
  readFeed,
  say,
  sleep,
  SLOT_SECONDS,
  SLOTS_PER_EPOCH,
  slashingDbCoverage,
  spawnLogged,
  startDevnet,
  startSignerProcess,
  stopProc,
  stopSignerGracefully,
  tokenWithInteropKeysViaCli,
  VALIDATORS,
  verifyFeed,
  VIGIL,
  waitFor,
  type ClientView,
  type Devnet,
  type E2eToken,
  type Proc,
  type SignerProc,
} from "./harness.js";
import { ensureLodestar, REPO_ROOT } from "./lodestar.js";

const SLOT_MS = SLOT_SECONDS * 1000;
const EPOCH_MS = SLOTS_PER_EPOCH * SLOT_MS;
const VC_SERVICE = path.join(REPO_ROOT, "test/e2e/vc-service.sh");

describe("scenario 2: primary and backup validator clients, the watchdog in charge", () => {
  let lodestar: string;
  let dir: string;
  let token: E2eToken | undefined;
  let signer: SignerProc | undefined;
  let devnet: Devnet | undefined;
  let watchdog: Proc | undefined;
  let watchdogNotify: FakeNotifySocket | undefined;
  let passed = false;

  beforeAll(() => {
    lodestar = ensureLodestar();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-e2e-failover-"));
    say(`scenario 2 working directory (logs): ${dir}`);
  });

  afterAll(async () => {
    if (devnet) for (const v of Object.values(devnet.vcPids)) tryKill(v.node, "SIGCONT");
    await devnet?.kill();
    if (watchdog && !watchdog.exitStatus) watchdog.child.kill("SIGKILL");
    if (signer && !signer.proc.exitStatus) signer.proc.child.kill("SIGKILL");
    watchdogNotify?.close();
    signer?.notify?.close();
    token?.token.destroy();
    if (passed && !process.env.VIGIL_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    else say(`logs kept in ${dir}`);
  });

  it("the backup takes over, the chain keeps finalizing, the primary is refused, nothing slashable is signed", async () => {
    token = await tokenWithInteropKeysViaCli(`vigil-e2e-2-${process.pid}`.slice(0, 32), VALIDATORS, dir);
    signer = await startSignerProcess(dir, token, ["primary", "backup"]);
    const s = signer;
    const client = async (id: string) => (await admin<ClientView>(s, `/admin/v1/clients/${id}`)).body;

    // The backup starts as a fenced hot standby: its requests are refused until the watchdog enables it.
    const fence = await admin<ClientView>(s, "/admin/v1/clients/backup/disable", { generation: 1 });
    expect(fence.status).toBe(200);
    expect(fence.body.enabled).toBe(false);

    devnet = await startDevnet(lodestar, dir, {
      SIGNER_URL: s.clientUrls.primary!,
      VC1_URL: s.clientUrls.primary!,
      VC2_URL: s.clientUrls.backup!,
      BACKUP_VC: "1",
      VC2_GRAFFITI: "backup",
      DURATION: "900",
    });
    const d = devnet;
    const watcher = new ChainWatcher(d.bnUrl);
    watcher.start();
    await waitFor(
      "genesis from the beacon node",
      async () => {
        await watcher.poll();
        return watcher.genesisTime !== undefined;
      },
      60_000,
      500,
    );

    const watchdogConfig = {
      dataDir: path.join(dir, "watchdog"),
      chain: { slotDurationMs: SLOT_MS, slotsPerEpoch: SLOTS_PER_EPOCH }, // genesis time: read from the beacon node
      validators: { indices: Array.from({ length: VALIDATORS }, (_, i) => String(i)) },
      signers: { main: { url: s.url, adminTokenFile: path.join(dir, "admin.token"), timeoutMs: 2_000 } },
      stacks: {
        primary: {
          clientId: "primary",
          signer: "main",
          beaconNode: { url: d.bnUrl },
          service: {
            statusCommand: ["sh", VC_SERVICE, "status", String(d.vcPids.vc1!.node)],
            stopCommand: ["sh", VC_SERVICE, "unreachable"],
            startCommand: ["sh", VC_SERVICE, "start", String(d.vcPids.vc1!.node)],
            timeoutMs: 2_000,
          },
        },
        backup: {
          clientId: "backup",
          signer: "main",
          beaconNode: { url: d.bnUrl },
          service: {
            statusCommand: ["sh", VC_SERVICE, "status", String(d.vcPids.vc2!.node)],
            stopCommand: ["sh", VC_SERVICE, "unreachable"],
            startCommand: ["sh", VC_SERVICE, "start", String(d.vcPids.vc2!.node)],
            timeoutMs: 2_000,
          },
        },
      },
      // A single-node devnet has no peers; slots are 2 s, so the watchdog looks every second.
      monitor: {
        intervalMs: 1_000,
        probeTimeoutMs: 1_500,
        failuresBeforeFailover: 3,
        successesBeforeHealthy: 2,
        signerSilenceSlots: 2,
        minPeers: 0,
        maxSyncDistance: 4,
      },
      failover: {
        automatic: true,
        signerRetryMs: 5_000,
        drainTimeoutMs: 10_000,
        verifySlots: 8,
        livenessQuietEpochs: 2,
        refusedRetryMs: 5_000,
        leaseMs: 5_000,
      },
      metrics: { enabled: false },
      log: { level: "info" },
    };
    const watchdogConfigFile = path.join(dir, "watchdog.json");
    fs.writeFileSync(watchdogConfigFile, JSON.stringify(watchdogConfig, null, 2));
    watchdogNotify = NOTIFY_AVAILABLE ? await fakeNotifySocket() : undefined;
    watchdog = spawnLogged(
      "watchdog",
      dir,
      process.execPath,
      [VIGIL, "watchdog", "start", "--config", watchdogConfigFile],
      watchdogNotify ? { NOTIFY_SOCKET: watchdogNotify.path, WATCHDOG_USEC: "10000000" } : {},
    );
    if (watchdogNotify) {
      await watchdogNotify.waitFor((a) => a === "READY=1", 60_000, "READY=1 from the watchdog");
      say("watchdog READY=1");
    }

    // The primary signs alone until the chain has finalized; the backup's requests are refused meanwhile.
    await waitFor(
      "the primary to bring the chain to finality",
      () => {
        if (watchdog!.exitStatus) throw new Error(`the watchdog exited: ${JSON.stringify(watchdog!.exitStatus)}; see ${watchdog!.logFile}`);
        return watcher.finalizedEpoch >= 2;
      },
      8 * EPOCH_MS,
      1_000,
    );
    const before = { primary: await client("primary"), backup: await client("backup") };
    say(
      `before the stop: head ${watcher.headSlot}, finalized ${watcher.finalizedEpoch}; primary signed ${before.primary.signed}, backup signed ${before.backup.signed} / refused ${before.backup.refused}`,
    );
    expect(before.primary.enabled).toBe(true);
    expect(before.primary.signed).toBeGreaterThan(0);
    expect(before.backup.signed).toBe(0);

    // Freeze the primary validator client: to the watchdog it goes silent, and its stop command fails.
    const finalizedAtStop = watcher.finalizedEpoch;
    const slotAtStop = watcher.currentSlot();
    process.kill(d.vcPids.vc1!.node, "SIGSTOP");
    const stoppedAt = Date.now();
    say(`primary validator client (pid ${d.vcPids.vc1!.node}) frozen at slot ${slotAtStop}`);

    const fencedAt = await waitFor("the watchdog to fence the primary", async () => !(await client("primary")).enabled && Date.now(), 60_000, 200);
    const activatedAt = await waitFor("the watchdog to enable the backup", async () => (await client("backup")).enabled && Date.now(), 60_000, 200);
    const firstBackup = await waitFor("the backup's first signature", async () => (await readFeed(s)).find((e) => e.clientId === "backup"), 10 * SLOT_MS, 200);
    const failoverMs = Date.parse(firstBackup.at) - stoppedAt;
    say(
      `primary fenced ${fencedAt - stoppedAt} ms after the freeze, backup enabled after ${activatedAt - stoppedAt} ms, first backup signature (${firstBackup.type}) after ${failoverMs} ms`,
    );

    // Wake the primary: everything it asks for now is refused.
    const refusedBefore = (await client("primary")).refused;
    process.kill(d.vcPids.vc1!.node, "SIGCONT");
    const resumedAt = Date.now();
    const lateRefusals = await waitFor(
      "the woken primary's requests to be refused",
      async () => {
        const v = await client("primary");
        return v.refused > refusedBefore && v.lastRequestAt !== null && Date.parse(v.lastRequestAt) >= resumedAt && v;
      },
      6 * SLOT_MS,
      500,
    );
    say(`primary woke up: ${lateRefusals.refused - refusedBefore} late request(s) refused so far`);

    // The chain keeps finalizing under the backup.
    await waitFor(
      `finality beyond epoch ${finalizedAtStop + 2} under the backup`,
      () => watcher.finalizedEpoch >= finalizedAtStop + 2 && watcher.settledSlots() > watcher.currentSlot() - 3,
      8 * EPOCH_MS,
      1_000,
    );
    await sleep(2 * SLOT_MS); // some more late requests from the primary
    await watcher.stop();
    const pools = await watcher.slashingsInPool();
    const finalPrimary = await client("primary");
    const finalBackup = await client("backup");
    const history = JSON.parse(execFileSync(process.execPath, [VIGIL, "history", "--json", "--config", watchdogConfigFile], { encoding: "utf8" })) as {
      failovers: { from: string; to: string; state: string; trigger: string; activationToSignatureMs: number | null }[];
    };

    // Quiesce: validator clients first, then the watchdog (its own STOPPING=1 and exit 0), then the signer.
    await d.kill();
    const wdStop = await stopProc(watchdog, "SIGTERM", 60_000);
    const wdStopping = watchdogNotify ? watchdogNotify.assignments().includes("STOPPING=1") : undefined;
    const feed = await readFeed(s);
    const signerStop = await stopSignerGracefully(s);
    const sigs = verifyFeed(feed);
    const report = check(feed, 1);
    const db = slashingDbCoverage(s.slashingDb, feed);
    const primaryAfterResume = feed.filter((e) => e.clientId === "primary" && Date.parse(e.at) >= resumedAt);
    const primaryAfterFence = feed.filter((e) => e.clientId === "primary" && Date.parse(e.at) > fencedAt);
    const blocksAfter = [...watcher.blocks.values()].filter((b) => b.slot > slotAtStop);
    const backupBlocks = blocksAfter.filter((b) => b.graffiti === "backup");
    const emptyAfterStop = [...watcher.emptySlots].filter((x) => x > slotAtStop).sort((a, b) => a - b);
    const emptyBeforeStop = [...watcher.emptySlots].filter((x) => x <= slotAtStop).sort((a, b) => a - b);
    const blockSigs = new Set(feed.filter((e) => e.type === "BLOCK_V2" || e.type === "BLOCK").map((e) => e.signature.toLowerCase()));
    const onChainNotFromVigil = [...watcher.blocks.values()].filter((b) => !blockSigs.has(b.signature));

    say(
      `scenario 2: failover ${history.failovers[0]?.from} → ${history.failovers[0]?.to} ${history.failovers[0]?.state} (${history.failovers[0]?.trigger}); ` +
        `freeze → first backup signature ${failoverMs} ms (activation → signature ${history.failovers[0]?.activationToSignatureMs} ms by the watchdog's count); ` +
        `finalized ${finalizedAtStop} at the freeze → ${watcher.finalizedEpoch}; slots ${watcher.settledSlots()}, empty before the freeze: ${emptyBeforeStop.join(",") || "none"}, ` +
        `after: ${emptyAfterStop.join(",") || "none"}; ${backupBlocks.length} backup block(s); signatures: primary ${report.byClient.primary ?? 0}, backup ${report.byClient.backup ?? 0}, ` +
        `${sigs.invalid.length} invalid; primary refused ${finalPrimary.refused} (late, after waking: ${finalPrimary.refused - refusedBefore}), backup refused ${finalBackup.refused} while fenced; ` +
        `slashable pairs ${report.slashable.length}, overlaps ${report.overlaps.length}; pools ${JSON.stringify(pools)}; ` +
        `watchdog exit ${wdStop.code}${wdStopping === undefined ? "" : ` (STOPPING=1 ${wdStopping ? "sent" : "NOT sent"})`}, signer exit ${signerStop.code}`,
    );

    expect(history.failovers[0]).toMatchObject({ from: "primary", to: "backup", state: "DONE" });
    expect(finalBackup.enabled).toBe(true);
    expect(finalPrimary.enabled).toBe(false);
    expect(backupBlocks.length, "blocks proposed by the backup after the freeze").toBeGreaterThan(0);
    expect(watcher.finalizedEpoch).toBeGreaterThanOrEqual(finalizedAtStop + 2);
    expect(finalPrimary.refused).toBeGreaterThan(refusedBefore);
    expect(primaryAfterResume, "signatures released to the primary after it woke up").toEqual([]);
    expect(primaryAfterFence, "signatures released to the primary after the fence").toEqual([]);
    expect(before.backup.refused, "the fenced backup's requests were refused before the failover").toBeGreaterThan(0);
    expect(sigs.invalid).toEqual([]);
    expect(report.slashable, "slashable pairs in the signature feed").toEqual([]);
    expect(report.overlaps, "keys served to two clients at once").toEqual([]);
    expect(pools).toEqual({ proposer: 0, attester: 0 });
    expect(onChainNotFromVigil).toEqual([]);
    expect(db.missing).toEqual([]);
    expect(wdStop.code).toBe(0);
    if (wdStopping !== undefined) expect(wdStopping).toBe(true);
    expect(signerStop.code).toBe(0);
    passed = true;
  });
});

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}
