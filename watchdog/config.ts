import fs from "node:fs";
import path from "node:path";
import {
  DEFAULT_LOG_STYLE,
  invalidHostAllowlistEntry,
  invalidOriginEntry,
  LOG_FORMATS,
  LOG_TIMESTAMPS,
  type LogFormat,
  type LogTimestamp,
} from "../common/index.js";
import { SettingsReader } from "../common/index.js";
import { WatchdogConfigError } from "./errors.js";

/** The two stacks the watchdog guards. Failover moves signing from one to the other. */
export const STACK_NAMES = ["primary", "backup"] as const;
export type StackName = (typeof STACK_NAMES)[number];

export function otherStack(name: StackName): StackName {
  return name === "primary" ? "backup" : "primary";
}

/** One signer's admin API (see signer/docs/admin-api.md). */
export interface SignerEndpointConfig {
  id: string;
  /**
   * Base URLs of the signer's instances (each one's main listener; admin routes are under /admin/v1/), in the
   * order the watchdog tries them. Config: `url` (one instance) or `urls` (several processes or hosts on one
   * shared slashing database). Several instances are one signer: one fencing call, verified at each of them.
   */
  urls: string[];
  /** 0600 file with the admin bearer token. Read at start-up, never logged. */
  adminTokenFile: string;
  /**
   * Path of this signer's slashing-protection database, if the watchdog can open it (same host or a shared
   * mount). Only used when the two stacks use different signers: the history moves from the old signer's file
   * to the new one's (EIP-3076), or, if the old one cannot be read, the new one's low watermarks are raised.
   */
  slashingDbPath?: string;
  timeoutMs: number;
}

export interface ServiceConfig {
  /** Exit status 0 means active; the first line of stdout is reported (systemctl is-active prints the state). */
  statusCommand: string[];
  stopCommand: string[];
  startCommand: string[];
  timeoutMs: number;
}

export interface StackConfig {
  name: StackName;
  /** This stack's validator client identity at its signer (`clients[].id` in the signer config). */
  clientId: string;
  /** Key into `signers`. */
  signer: string;
  beaconNodeUrl: string;
  service: ServiceConfig;
}

export interface ChainConfig {
  /** Unix seconds; when absent it is read from a beacon node (/eth/v1/beacon/genesis) at start-up. */
  genesisTime?: number;
  slotDurationMs: number;
  slotsPerEpoch: number;
}

export interface MonitorConfig {
  intervalMs: number;
  probeTimeoutMs: number;
  /** Consecutive checks that must find the active stack down before a failover starts (at least 2). */
  failuresBeforeFailover: number;
  /** Consecutive good checks before a stack that was down is reported healthy again. */
  successesBeforeHealthy: number;
  /** The active client is "silent" when the signer has had no request from it for this many slots. */
  signerSilenceSlots: number;
  minPeers: number;
  /** Largest beacon node sync_distance (slots) still counted as synced. */
  maxSyncDistance: number;
}

export interface FailoverConfig {
  /** Fail over from primary to backup without an operator (failback is always an operator's command). */
  automatic: boolean;
  /** How long to keep retrying a signer call (fence, read-back, activate) before giving up. */
  signerRetryMs: number;
  drainTimeoutMs: number;
  /** The new stack must sign within this many slots of activation, or the failover is reported failed. */
  verifySlots: number;
  /** Full epochs the keys must be seen not live on chain before a signer without the old history may sign. */
  livenessQuietEpochs: number;
  /** After a refused automatic failover, wait this long before trying again (the alert is not repeated). */
  refusedRetryMs: number;
  /** A failover whose executor stopped renewing its lease this long ago is taken over (recovered). */
  leaseMs: number;
}

export interface WebhookConfig {
  url: string;
  timeoutMs: number;
  retries: number;
  /** Optional 0600 file holding a bearer token for the webhook. */
  tokenFile?: string;
}

export interface WatchdogConfig {
  /** Where watchdog.sqlite lives. */
  dataDir: string;
  chain: ChainConfig;
  /** Validator indices whose on-chain liveness is checked. */
  validatorIndices: string[];
  signers: Record<string, SignerEndpointConfig>;
  stacks: Record<StackName, StackConfig>;
  monitor: MonitorConfig;
  failover: FailoverConfig;
  alerts: { webhook?: WebhookConfig };
  /** hostAllowlist / allowedOrigins: the Host/Origin guard of the listener (config/http-guard.ts). */
  metrics: { enabled: boolean; host: string; port: number; hostAllowlist: string[]; allowedOrigins: string[] };
  /** format: json (default) or pretty (pino-pretty text); timestamp: epoch (default, Unix ms) or iso (ISO 8601 UTC). */
  log: { level: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent"; format: LogFormat; timestamp: LogTimestamp };
}

/** Reads and validates a watchdog config file; relative paths are resolved against the file's directory. */
export function loadWatchdogConfig(file: string): WatchdogConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new WatchdogConfigError("", `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new WatchdogConfigError("", `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseWatchdogConfig(parsed, path.dirname(path.resolve(file)));
}

export function parseWatchdogConfig(value: unknown, baseDir = process.cwd()): WatchdogConfig {
  const root = SettingsReader.of(value, "", (field, message) => new WatchdogConfigError(field, message));
  const resolve = (p: string) => path.resolve(baseDir, p);

  const chainObj = root.object("chain", true);
  const genesisTime = chainObj.has("genesisTime") ? chainObj.int("genesisTime", undefined, 0) : undefined;
  const chain: ChainConfig = {
    ...(genesisTime !== undefined ? { genesisTime } : {}),
    slotDurationMs: chainObj.int("slotDurationMs", 12_000, 100),
    slotsPerEpoch: chainObj.int("slotsPerEpoch", 32, 1),
  };
  chainObj.done();

  const validatorsObj = root.object("validators");
  const validatorIndices = validatorsObj.stringArray("indices");
  validatorIndices.forEach((v, i) => {
    if (!/^(0|[1-9][0-9]{0,19})$/.test(v)) throw new WatchdogConfigError(`validators.indices[${i}]`, "must be a decimal validator index");
  });
  if (validatorIndices.length === 0) throw new WatchdogConfigError("validators.indices", "must list at least one validator index");
  validatorsObj.done();

  const signersObj = root.object("signers");
  const signers: Record<string, SignerEndpointConfig> = {};
  for (const id of signersObj.keys()) {
    const s = signersObj.object(id);
    const slashingDbPath = s.optionalString("slashingDbPath");
    signers[id] = {
      id,
      urls: signerUrls(s),
      adminTokenFile: resolve(s.string("adminTokenFile")),
      ...(slashingDbPath !== undefined ? { slashingDbPath: resolve(slashingDbPath) } : {}),
      timeoutMs: s.int("timeoutMs", 3_000, 100),
    };
    s.done();
  }
  if (Object.keys(signers).length === 0) throw new WatchdogConfigError("signers", "must define at least one signer");
  signersObj.done();

  const stacksObj = root.object("stacks");
  const stacks = {} as Record<StackName, StackConfig>;
  for (const name of STACK_NAMES) {
    const st = stacksObj.object(name);
    const signer = st.string("signer");
    if (!signers[signer]) throw new WatchdogConfigError(st.field("signer"), `names no signer in signers (have: ${Object.keys(signers).join(", ")})`);
    const beacon = st.object("beaconNode");
    const beaconNodeUrl = beacon.url("url");
    beacon.done();
    const svc = st.object("service");
    const unit = svc.optionalString("unit");
    const unitDefault = (verb: string) => (unit ? ["systemctl", verb, unit] : undefined);
    const service: ServiceConfig = {
      statusCommand: svc.command("statusCommand", unitDefault("is-active")),
      stopCommand: svc.command("stopCommand", unitDefault("stop")),
      startCommand: svc.command("startCommand", unitDefault("start")),
      timeoutMs: svc.int("timeoutMs", 10_000, 100),
    };
    svc.done();
    stacks[name] = { name, clientId: st.string("clientId"), signer, beaconNodeUrl, service };
    st.done();
  }
  stacksObj.done();
  if (stacks.primary.signer === stacks.backup.signer && stacks.primary.clientId === stacks.backup.clientId) {
    throw new WatchdogConfigError("stacks.backup.clientId", "must differ from stacks.primary.clientId when both use the same signer");
  }

  const m = root.object("monitor", true);
  const slot = chain.slotDurationMs;
  const monitor: MonitorConfig = {
    intervalMs: m.int("intervalMs", Math.max(100, Math.round(slot / 2)), 50),
    probeTimeoutMs: m.int("probeTimeoutMs", Math.min(5_000, Math.max(200, slot / 2)), 50),
    failuresBeforeFailover: m.int("failuresBeforeFailover", 3, 2), // one failed probe never triggers a failover
    successesBeforeHealthy: m.int("successesBeforeHealthy", 2, 1),
    signerSilenceSlots: m.int("signerSilenceSlots", 2, 1),
    minPeers: m.int("minPeers", 5, 0),
    maxSyncDistance: m.int("maxSyncDistance", 2, 0),
  };
  m.done();

  const f = root.object("failover", true);
  const failover: FailoverConfig = {
    automatic: f.bool("automatic", true),
    signerRetryMs: f.int("signerRetryMs", 10_000, 0),
    drainTimeoutMs: f.int("drainTimeoutMs", 30_000, 0),
    verifySlots: f.int("verifySlots", 8, 1),
    livenessQuietEpochs: f.int("livenessQuietEpochs", 2, 1),
    refusedRetryMs: f.int("refusedRetryMs", 60_000, 0),
    leaseMs: f.int("leaseMs", 15_000, 500),
  };
  f.done();

  const a = root.object("alerts", true);
  let webhook: WebhookConfig | undefined;
  if (a.has("webhook")) {
    const w = a.object("webhook");
    const tokenFile = w.optionalString("tokenFile");
    webhook = {
      url: w.url("url"),
      timeoutMs: w.int("timeoutMs", 5_000, 100),
      retries: w.int("retries", 3, 0, 20),
      ...(tokenFile !== undefined ? { tokenFile: resolve(tokenFile) } : {}),
    };
    w.done();
  }
  a.done();

  const mt = root.object("metrics", true);
  const metrics = {
    enabled: mt.bool("enabled", true),
    host: mt.string("host", "127.0.0.1"),
    port: mt.int("port", 9464, 0, 65535),
    hostAllowlist: checkedEntries(mt, "hostAllowlist", invalidHostAllowlistEntry),
    allowedOrigins: checkedEntries(mt, "allowedOrigins", invalidOriginEntry),
  };
  mt.done();

  const lg = root.object("log", true);
  const log = {
    level: lg.enumOf("level", ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const, "info"),
    format: lg.enumOf("format", LOG_FORMATS, DEFAULT_LOG_STYLE.format),
    timestamp: lg.enumOf("timestamp", LOG_TIMESTAMPS, DEFAULT_LOG_STYLE.timestamp),
  };
  lg.done();

  const dataDir = resolve(root.string("dataDir", process.env.VIGIL_DATA_DIR ?? "data"));
  root.done();
  return { dataDir, chain, validatorIndices, signers, stacks, monitor, failover, alerts: webhook ? { webhook } : {}, metrics, log };
}

/** `url` (one instance) or `urls` (one or more, distinct), never both. */
function signerUrls(s: SettingsReader): string[] {
  if (s.has("url") && s.has("urls")) throw new WatchdogConfigError(s.field("urls"), "cannot be given together with url: list every instance in urls");
  if (!s.has("urls")) return [s.url("url")];
  const urls = s.stringArray("urls").map((u, i) => {
    const parsed = URL.canParse(u) ? new URL(u) : undefined;
    if (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") throw new WatchdogConfigError(`${s.field("urls")}[${i}]`, "must be an http(s) URL");
    return u.replace(/\/+$/, "");
  });
  if (urls.length === 0) throw new WatchdogConfigError(s.field("urls"), "must list at least one instance URL");
  const twice = urls.find((u, i) => urls.indexOf(u) !== i);
  if (twice !== undefined) throw new WatchdogConfigError(s.field("urls"), `lists ${twice} twice`);
  return urls;
}

function checkedEntries(o: SettingsReader, key: string, invalid: (entry: string) => string | undefined): string[] {
  const entries = o.stringArray(key, []);
  entries.forEach((e, i) => {
    const problem = invalid(e);
    if (problem !== undefined) throw new WatchdogConfigError(`${o.field(key)}[${i}]`, problem);
  });
  return entries;
}
