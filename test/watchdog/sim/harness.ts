// One simulated deployment for a scenario: a real signer (SoftHSM2 token with interop keys, real slashing
// database, fencing state and signature feed) serving two client identities, two simulated beacon nodes on
// one simulated chain, two simulated validator clients, and a watchdog config pointing at all of them.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseSignerConfig, startSigner, type RunningSigner } from "../../../signer/index.js";
import { parseWatchdogConfig, type WatchdogConfig } from "../../../watchdog/index.js";
import type { TestToken } from "../../helpers/softhsm.js";
import { interopPubkey, LogCapture, tokenWithInteropKeys } from "../../signer/harness.js";
import { check, readFeed, type CheckReport } from "../checker.js";
import { SimBeaconNode } from "./beacon-node.js";
import { SimChain } from "./chain.js";
import { SimValidatorClient, type SimKey } from "./validator-client.js";

export const SLOT_MS = 400;
export const SLOTS_PER_EPOCH = 8; // minimal preset

export interface SimEnv {
  dir: string;
  chain: SimChain;
  signer: RunningSigner;
  signerLog: LogCapture;
  adminToken: string;
  beacons: { primary: SimBeaconNode; backup: SimBeaconNode };
  vcs: { primary: SimValidatorClient; backup: SimValidatorClient };
  keys: SimKey[];
  /** The watchdog config as JSON (also written to configFile). */
  configJson: Record<string, unknown>;
  configFile: string;
  config: WatchdogConfig;
  feed(): Promise<CheckReport & { raw: Awaited<ReturnType<typeof readFeed>> }>;
  destroy(): Promise<void>;
}

let tokenCounter = 0;

export async function createSimEnv(
  name: string,
  opts: { keys?: number; watchdog?: (cfg: Record<string, unknown>) => void; maxHandovers?: number } = {},
): Promise<SimEnv> {
  const keyCount = opts.keys ?? 4;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `vigil-wd-${name}-`));
  const token: TestToken = await tokenWithInteropKeys(`wd${process.pid}-${tokenCounter++}-${name}`.slice(0, 32), keyCount);
  const write = (file: string, content: string) => {
    fs.writeFileSync(path.join(dir, file), content, { mode: 0o600 });
    return path.join(dir, file);
  };
  const tokens = {
    primary: crypto.randomBytes(24).toString("hex"),
    backup: crypto.randomBytes(24).toString("hex"),
    admin: crypto.randomBytes(24).toString("hex"),
  };
  const signerLog = new LogCapture();
  const signer = await startSigner(
    parseSignerConfig({
      network: "minimal-devnet",
      listen: { host: "127.0.0.1", port: 0 },
      dataDir: path.join(dir, "signer"),
      hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
      clients: [
        { id: "primary-vc", tokenFile: write("primary.token", `${tokens.primary}\n`), keys: "*" },
        { id: "backup-vc", tokenFile: write("backup.token", `${tokens.backup}\n`), keys: "*" },
      ],
      admin: { tokenFile: write("admin.token", `${tokens.admin}\n`) },
      logLevel: "warn",
    }),
    { logDestination: signerLog },
  );

  const keys: SimKey[] = Array.from({ length: keyCount }, (_, i) => ({ index: i, pubkey: interopPubkey(i) }));
  const chain = new SimChain({ slotMs: SLOT_MS, slotsPerEpoch: SLOTS_PER_EPOCH, validatorCount: keyCount });
  const beacons = { primary: await SimBeaconNode.start("primary", chain), backup: await SimBeaconNode.start("backup", chain) };
  const vcs = {
    primary: new SimValidatorClient("primary", { chain, signerUrl: signer.url, token: tokens.primary, beaconUrl: beacons.primary.url, keys }),
    backup: new SimValidatorClient("backup", { chain, signerUrl: signer.url, token: tokens.backup, beaconUrl: beacons.backup.url, keys }),
  };
  await vcs.primary.listenControl();
  await vcs.backup.listenControl();

  const configJson: Record<string, unknown> = {
    dataDir: path.join(dir, "watchdog"),
    chain: { genesisTime: chain.genesisTime, slotDurationMs: SLOT_MS, slotsPerEpoch: SLOTS_PER_EPOCH },
    validators: { indices: keys.map((k) => String(k.index)) },
    signers: { main: { url: signer.url, adminTokenFile: path.join(dir, "admin.token"), timeoutMs: 1_000 } },
    stacks: {
      primary: {
        clientId: "primary-vc",
        signer: "main",
        beaconNode: { url: beacons.primary.url },
        service: { ...vcs.primary.serviceCommands(), timeoutMs: 2_000 },
      },
      backup: {
        clientId: "backup-vc",
        signer: "main",
        beaconNode: { url: beacons.backup.url },
        service: { ...vcs.backup.serviceCommands(), timeoutMs: 2_000 },
      },
    },
    monitor: {
      intervalMs: 200,
      probeTimeoutMs: 300,
      failuresBeforeFailover: 3,
      successesBeforeHealthy: 2,
      signerSilenceSlots: 2,
      minPeers: 5,
      maxSyncDistance: 2,
    },
    failover: { automatic: true, signerRetryMs: 2_000, drainTimeoutMs: 3_000, verifySlots: 6, livenessQuietEpochs: 2, refusedRetryMs: 1_000, leaseMs: 1_500 },
    metrics: { enabled: true, host: "127.0.0.1", port: 0 },
    log: { level: "warn" },
  };
  opts.watchdog?.(configJson);
  const configFile = write("watchdog.json", JSON.stringify(configJson, null, 2));
  const config = parseWatchdogConfig(configJson, dir);

  return {
    dir,
    chain,
    signer,
    signerLog,
    adminToken: tokens.admin,
    beacons,
    vcs,
    keys,
    configJson,
    configFile,
    config,
    async feed() {
      const raw = await readFeed(signer.url, tokens.admin);
      return { ...check(raw, opts.maxHandovers ?? 1), raw };
    },
    async destroy() {
      await vcs.primary.close();
      await vcs.backup.close();
      await beacons.primary.close();
      await beacons.backup.close();
      await signer.close();
      token.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Admin API call with the env's token (tests use it to look at the signer's view directly). */
export async function admin<T>(env: SimEnv, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${env.signer.url}${route}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${env.adminToken}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
