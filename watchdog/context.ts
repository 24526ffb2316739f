import { Alerter } from "./alerts/alerter.js";
import { WebhookSender } from "./alerts/webhook.js";
import { ChainClock } from "./chain-clock.js";
import { STACK_NAMES, type WatchdogConfig } from "./config.js";
import { WatchdogConfigError } from "./errors.js";
import { createLogger, type Logger } from "./log.js";
import { WatchdogMetrics } from "./metrics.js";
import { fetchGenesisTime } from "./probes/beacon.js";
import { SignerAdminClient } from "./signer-client.js";
import { newLeaseHolder, WatchdogStore, type LeaseHolder } from "./state/store.js";

/** Everything the daemon and the CLI share: state, signers, clock, alerts. */
export interface WatchdogContext {
  config: WatchdogConfig;
  store: WatchdogStore;
  signers: Map<string, SignerAdminClient>;
  clock: ChainClock;
  log: Logger;
  metrics: WatchdogMetrics;
  alerter: Alerter;
  lease: LeaseHolder;
  close(): Promise<void>;
}

export interface ContextOptions {
  logDestination?: NodeJS.WritableStream;
  logLevel?: string;
  /** How long to keep asking the beacon nodes for genesis when the config does not give it. */
  genesisTimeoutMs?: number;
  /** Commands that never use the chain clock (status, fence) must work with every beacon node down. */
  clockNeeded?: boolean;
}

export async function createContext(config: WatchdogConfig, opts: ContextOptions = {}): Promise<WatchdogContext> {
  const log = createLogger(opts.logLevel ?? config.log.level, opts.logDestination, config.log);
  const metrics = new WatchdogMetrics();
  const signers = new Map<string, SignerAdminClient>();
  for (const s of Object.values(config.signers)) signers.set(s.id, new SignerAdminClient(s));
  const webhook = config.alerts.webhook ? new WebhookSender(config.alerts.webhook) : undefined;
  const alerter = new Alerter(log, metrics, webhook);
  const genesisTime =
    config.chain.genesisTime ??
    (opts.clockNeeded === false ? Math.floor(Date.now() / 1000) : await discoverGenesis(config, log, opts.genesisTimeoutMs ?? 30_000));
  const clock = new ChainClock(genesisTime * 1000, config.chain.slotDurationMs, config.chain.slotsPerEpoch);
  const store = WatchdogStore.open(config.dataDir);
  return {
    config,
    store,
    signers,
    clock,
    log,
    metrics,
    alerter,
    lease: newLeaseHolder(),
    async close() {
      await alerter.flush();
      store.close();
      // The last lines reach stdout before the process exits (bounded: a stalled reader does not hold the exit).
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    },
  };
}

async function discoverGenesis(config: WatchdogConfig, log: Logger, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const name of STACK_NAMES) {
      const t = await fetchGenesisTime(config.stacks[name].beaconNodeUrl, config.monitor.probeTimeoutMs);
      if (t !== null) return t;
    }
    if (Date.now() > deadline) {
      throw new WatchdogConfigError("chain.genesisTime", "is not set and no beacon node answered /eth/v1/beacon/genesis");
    }
    log.warn("no beacon node answered /eth/v1/beacon/genesis yet; retrying");
    await new Promise((r) => setTimeout(r, 1_000));
  }
}
