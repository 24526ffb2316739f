/**
 * The signer's JSON config: parsed and checked up front so a typo fails at start-up naming the field, never
 * at the first signing request. Relative paths are resolved against the config file's directory.
 */
import fs from "node:fs";
import path from "node:path";
import {
  DEFAULT_HTTP_GUARD,
  DEFAULT_LOG_STYLE,
  defaultDataDir,
  EXIT_CODES,
  invalidHostAllowlistEntry,
  invalidOriginEntry,
  isHexOfLength,
  LOG_FORMATS,
  LOG_TIMESTAMPS,
  normalizeHex,
  VigilError,
  type HttpGuardSettings,
  type LogFormat,
  type LogTimestamp,
} from "../../common/index.js";
import { SettingChecks } from "../../common/index.js";
import type { PostgresConnection, PostgresTls, SlashingDbLocation } from "../../slashing-db/index.js";
import { parseHsmSection, type HsmConfig } from "../keystore/index.js";
import {
  isNetworkFile,
  namedNetwork,
  NETWORK_NAMES,
  networkFromYamlFile,
  SIGN_TYPES,
  validateNetworkConfig,
  type NetworkConfig,
  type SignType,
} from "../signing/index.js";
import { SignerSetupError } from "./service-errors.js";

export class SignerConfigError extends VigilError<"INVALID_CONFIG"> {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super("INVALID_CONFIG", field ? `config: ${field} ${message}` : `config: ${message}`, EXIT_CODES.invalidInput);
  }
}

export interface ListenAddress {
  host: string;
  port: number;
}

export interface TlsSettings {
  cert: string;
  key: string;
  ca?: string;
  requestClientCert: boolean;
}

/** "*" (every type) or the request types a client may have signed. */
export type AllowedTypes = "*" | readonly SignType[];
/**
 * A client's types when its config says nothing: every duty a validator client performs, but not the two that
 * no duty needs and whose signature cannot be taken back: VOLUNTARY_EXIT (an exit is final) and DEPOSIT (a deposit
 * signature for a not-yet-deposited key lets its holder front-run the deposit with their own withdrawal credentials).
 */
export const DEFAULT_ALLOWED_TYPES: readonly SignType[] = SIGN_TYPES.filter((t) => t !== "VOLUNTARY_EXIT" && t !== "DEPOSIT");
/** Epochs a block's slot or an attestation's epochs may be ahead of the wall clock (limits.maxEpochsAhead). */
export const DEFAULT_MAX_EPOCHS_AHEAD = 2;

export interface ClientConfig {
  /** Stable name used by the admin API, metrics and the audit feed. */
  id: string;
  tokenFile?: string;
  /** SHA-256 fingerprint of the client's TLS certificate, upper-case hex with colons (as openssl prints it). */
  tlsClientCertSha256?: string;
  /** A listener of its own: for clients that cannot send credentials (Lodestar 1.5.1). */
  listen?: ListenAddress;
  /** HTTPS on that listener (`listen.tls`; `true` there = the main listener's files). */
  listenTls?: TlsSettings;
  /** Request types this client may have signed (default DEFAULT_ALLOWED_TYPES). */
  allowedTypes: AllowedTypes;
  /** "*" or the lower-case 0x public keys this client may use. */
  keys: "*" | string[];
  /**
   * Whether the client may sign before any fence/activate call for it has been recorded (default true).
   * Set false on a standby (backup) client so that a fresh signer never has two clients enabled for the
   * same keys before the watchdog's first decision.
   */
  initiallyEnabled: boolean;
}

export interface SignerConfig {
  network: NetworkConfig;
  /** If set, the slashing database is pinned to it at start-up; otherwise the first one seen is pinned. */
  genesisValidatorsRoot?: string;
  listen: ListenAddress;
  tls?: TlsSettings;
  /** Host / Origin guard of every listener (config/http-guard.ts). */
  http: HttpGuardSettings;
  /** The implicit client "default" (no `clients` configured). */
  defaultClient: { allowedTypes: AllowedTypes };
  /** Undefined: /metrics on the main listener. With an address: on that listener only. */
  metrics: { enabled: boolean; listen?: ListenAddress };
  dataDir: string;
  /** A SQLite file (default `<dataDir>/slashing-protection.sqlite`) or a PostgreSQL database shared by signers. */
  slashingDb: SlashingDbLocation;
  hsm: HsmConfig;
  clients?: ClientConfig[];
  admin?: { tokenFile: string };
  keymanager: { enabled: boolean; tokenFile: string };
  limits: {
    maxQueueDepth: number;
    bodyLimitBytes: number;
    blsThreads?: number;
    /** A request whose expected wait for a signature exceeds this is refused at once with 503 (admission.ts). */
    maxWaitMs: number;
    /** Connections per listener; over it the one longest without a complete request is closed (connection-guard.ts). */
    maxConnections: number;
    /** Time to receive a request's headers (and a TLS handshake). */
    headersTimeoutMs: number;
    /** Time to receive a whole request, headers and body. */
    requestTimeoutMs: number;
    /** A connection with no traffic for this long is closed (also the keep-alive time between requests). */
    idleTimeoutMs: number;
    /** Blocks and attestations this many epochs ahead of the wall clock are refused (wall-clock-guard.ts). */
    maxEpochsAhead: number;
  };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** json (default: one pino JSON object a line) or pretty (pino-pretty text, for a terminal). */
  logFormat: LogFormat;
  /** epoch (default: the `time` field in Unix milliseconds) or iso (ISO 8601 in UTC). */
  logTimestamp: LogTimestamp;
  /** SoftHSM2 only: SOFTHSM2_CONF for this process (the embedded setup keeps its token under the data dir). */
  softhsmConf?: string;
  /**
   * Signer processes behind the listening ports (node:cluster workers, signer/cluster/README.md); 1: this process
   * serves alone. More than 1 needs the PostgreSQL slashing database (checkWorkersBackend).
   */
  workers: number;
}

const TOP_LEVEL = [
  "$schema",
  "network",
  "genesisValidatorsRoot",
  "listen",
  "tls",
  "http",
  "defaultClient",
  "metrics",
  "dataDir",
  "slashingDb",
  "hsm",
  "clients",
  "admin",
  "keymanager",
  "limits",
  "logLevel",
  "logFormat",
  "logTimestamp",
  "softhsmConf",
  "workers",
];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export const DEFAULT_LISTEN: ListenAddress = { host: "127.0.0.1", port: 9000 };
export const DEFAULT_LIMITS = {
  maxQueueDepth: 16_384,
  bodyLimitBytes: 1024 * 1024,
  maxWaitMs: 1000,
  maxConnections: 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 75_000, // validator clients keep connections open between slots
  maxEpochsAhead: DEFAULT_MAX_EPOCHS_AHEAD,
};
const CLIENT_ID = /^[A-Za-z0-9_.-]{1,64}$/;

type Obj = Record<string, unknown>;

/** The checks shared with the watchdog's config and the hsm section (config/settings-reader.ts), raising SignerConfigError. */
const check = new SettingChecks((field, message) => new SignerConfigError(field, message));
const onlyKeys = (value: Obj, allowed: string[], where: string): void => check.onlyKeys(value, allowed, where);
const str = (value: unknown, field: string): string => check.string(value, field);
const bool = (value: unknown, field: string): boolean => check.bool(value, field);
const int = (value: unknown, field: string, min: number, max: number): number => check.int(value, field, min, max);
const obj = (value: unknown, field: string): Obj => check.object(value, field);

function listen(value: unknown, field: string): ListenAddress {
  const v = obj(value, field);
  onlyKeys(v, ["host", "port"], field);
  return { host: str(v.host ?? DEFAULT_LISTEN.host, `${field}.host`), port: int(v.port, `${field}.port`, 0, 65535) };
}

function pubkey(value: unknown, field: string): string {
  if (!isHexOfLength(value, 48)) throw new SignerConfigError(field, "must be a 0x-prefixed 48-byte BLS public key");
  return normalizeHex(value);
}

/** A named network or a config.yaml file (relative to the config's directory); SignerConfigError on failure. */
function networkByName(value: string, field: string, resolve: (p: string) => string): NetworkConfig | undefined {
  try {
    return isNetworkFile(value) ? networkFromYamlFile(resolve(value)) : namedNetwork(value);
  } catch (err) {
    throw new SignerConfigError(field, `is invalid: ${(err as Error).message}`);
  }
}

/** The "network" setting on its own (`vigil signer start --embedded --network`): a name or a config.yaml path. */
export function networkOfSetting(value: unknown, baseDir: string): NetworkConfig {
  return network(value, (p) => path.resolve(baseDir, p));
}

function network(value: unknown, resolve: (p: string) => string): NetworkConfig {
  const choices = `${NETWORK_NAMES.map((n) => `"${n}"`).join(", ")}, a config.yaml path or an object`;
  if (value === undefined) throw new SignerConfigError("network", `is required (${choices})`);
  if (typeof value === "string") {
    const known = networkByName(value, "network", resolve);
    if (!known) throw new SignerConfigError("network", `"${value}" is not a known network (${choices})`);
    return known;
  }
  const v = obj(value, "network");
  onlyKeys(v, ["name", "preset", "genesisForkVersion", "forkVersions", "genesisTime", "secondsPerSlot"], "network");
  // A known name fills in what the object leaves out: {"name": "minimal-devnet", "genesisTime": …}.
  const known = typeof v.name === "string" && !isNetworkFile(v.name) ? networkByName(v.name, "network.name", resolve) : undefined;
  const chainClock: { genesisTime?: number; secondsPerSlot?: number } = {};
  if (v.genesisTime !== undefined) chainClock.genesisTime = int(v.genesisTime, "network.genesisTime", 0, 2 ** 40);
  if (v.secondsPerSlot !== undefined) chainClock.secondsPerSlot = int(v.secondsPerSlot, "network.secondsPerSlot", 1, 3600);
  try {
    return validateNetworkConfig({
      ...known,
      name: str(v.name, "network.name"),
      preset: str(v.preset ?? known?.preset, "network.preset") as NetworkConfig["preset"],
      genesisForkVersion: str(v.genesisForkVersion ?? known?.genesisForkVersion, "network.genesisForkVersion"),
      forkVersions: obj(v.forkVersions ?? known?.forkVersions ?? {}, "network.forkVersions") as NetworkConfig["forkVersions"],
      ...chainClock,
    });
  } catch (err) {
    if (err instanceof SignerConfigError) throw err;
    throw new SignerConfigError("network", `is invalid: ${(err as Error).message}`);
  }
}

function tlsSettings(value: unknown, field: string, resolve: (p: string) => string): TlsSettings {
  const t = obj(value, field);
  onlyKeys(t, ["cert", "key", "ca", "requestClientCert"], field);
  const tls: TlsSettings = {
    cert: resolve(str(t.cert, `${field}.cert`)),
    key: resolve(str(t.key, `${field}.key`)),
    requestClientCert: t.requestClientCert === undefined ? false : bool(t.requestClientCert, `${field}.requestClientCert`),
  };
  if (t.ca !== undefined) tls.ca = resolve(str(t.ca, `${field}.ca`));
  return tls;
}

function allowedTypes(value: unknown, field: string): AllowedTypes {
  if (value === "*") return "*";
  if (!Array.isArray(value)) throw new SignerConfigError(field, `must be "*" or an array of request types`);
  return value.map((t, i) => {
    if (!(SIGN_TYPES as readonly unknown[]).includes(t)) throw new SignerConfigError(`${field}[${i}]`, `must be one of ${SIGN_TYPES.join(", ")}`);
    return t as SignType;
  });
}

function stringList(value: unknown, field: string, invalid: (entry: string) => string | undefined): string[] {
  if (!Array.isArray(value)) throw new SignerConfigError(field, "must be an array of strings");
  return value.map((e, i) => {
    const entry = str(e, `${field}[${i}]`);
    const problem = invalid(entry);
    if (problem !== undefined) throw new SignerConfigError(`${field}[${i}]`, problem);
    return entry;
  });
}

function clients(value: unknown, resolve: (p: string) => string, mainTls: TlsSettings | undefined): ClientConfig[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new SignerConfigError("clients", "must be an array");
  const ids = new Set<string>();
  return value.map((item, i) => {
    const field = `clients[${i}]`;
    const v = obj(item, field);
    onlyKeys(v, ["id", "tokenFile", "tlsClientCertSha256", "listen", "keys", "initiallyEnabled", "allowedTypes"], field);
    const id = str(v.id, `${field}.id`);
    if (!CLIENT_ID.test(id)) throw new SignerConfigError(`${field}.id`, "may hold only letters, digits, '_', '.', '-' (1 to 64)");
    if (ids.has(id)) throw new SignerConfigError(`${field}.id`, `"${id}" is used by another client`);
    ids.add(id);
    const client: ClientConfig = { id, keys: "*", initiallyEnabled: true, allowedTypes: DEFAULT_ALLOWED_TYPES };
    if (v.allowedTypes !== undefined) client.allowedTypes = allowedTypes(v.allowedTypes, `${field}.allowedTypes`);
    if (v.initiallyEnabled !== undefined) client.initiallyEnabled = bool(v.initiallyEnabled, `${field}.initiallyEnabled`);
    if (v.tokenFile !== undefined) client.tokenFile = resolve(str(v.tokenFile, `${field}.tokenFile`));
    if (v.tlsClientCertSha256 !== undefined) {
      const fp = str(v.tlsClientCertSha256, `${field}.tlsClientCertSha256`);
      if (!/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/.test(fp)) {
        throw new SignerConfigError(`${field}.tlsClientCertSha256`, "must be a SHA-256 fingerprint (32 hex bytes, colons optional)");
      }
      client.tlsClientCertSha256 = normalizeFingerprint(fp);
    }
    if (v.listen !== undefined) {
      const { tls: listenTls, ...address } = obj(v.listen, `${field}.listen`);
      client.listen = listen(address, `${field}.listen`);
      if (listenTls === true) client.listenTls = mainTls;
      else if (listenTls !== undefined && listenTls !== false) client.listenTls = tlsSettings(listenTls, `${field}.listen.tls`, resolve);
      if (listenTls === true && mainTls === undefined) throw new SignerConfigError(`${field}.listen.tls`, "is true but there is no top-level tls to reuse");
    }
    if (client.tokenFile === undefined && client.tlsClientCertSha256 === undefined && client.listen === undefined) {
      throw new SignerConfigError(field, "needs a way to be recognised: tokenFile, tlsClientCertSha256 or listen");
    }
    if (v.keys === undefined) throw new SignerConfigError(`${field}.keys`, `is required ("*" or a list of public keys)`);
    if (v.keys !== "*") {
      if (!Array.isArray(v.keys)) throw new SignerConfigError(`${field}.keys`, `must be "*" or an array of public keys`);
      client.keys = v.keys.map((k, j) => pubkey(k, `${field}.keys[${j}]`));
    }
    return client;
  });
}

/**
 * `"<file>"` (the old form), `{"sqlite": {"path"}}` or `{"postgres": {url | host/port/database/user, passwordFile | passwordCredential, tls,
 * poolSize, allowServerAsyncCommitDefault}}`. The password itself is refused anywhere in the config: config files
 * are copied, backed up and printed.
 */
function slashingDb(value: unknown, dataDir: string, resolve: (p: string) => string): SlashingDbLocation {
  if (value === undefined) return { kind: "sqlite", path: path.join(dataDir, "slashing-protection.sqlite") };
  if (typeof value === "string") return { kind: "sqlite", path: resolve(str(value, "slashingDb")) };
  const v = obj(value, "slashingDb");
  const kinds = Object.keys(v);
  if (kinds.length !== 1 || (kinds[0] !== "sqlite" && kinds[0] !== "postgres")) {
    throw new SignerConfigError("slashingDb", `must be a file name, {"sqlite": {"path": …}} or {"postgres": {"url": …}}`);
  }
  if (v.sqlite !== undefined) {
    const s = obj(v.sqlite, "slashingDb.sqlite");
    onlyKeys(s, ["path"], "slashingDb.sqlite");
    return { kind: "sqlite", path: resolve(str(s.path, "slashingDb.sqlite.path")) };
  }
  return { kind: "postgres", connection: postgresConnection(v.postgres, resolve) };
}

const PG = "slashingDb.postgres";
const PG_TLS_MODES = ["disable", "require", "verify-full"] as const;

/** The alternative to `url`: the same connection in parts (pg's own names, as in Web3Signer-style configs). */
const PG_PARTS = ["host", "port", "database", "user"] as const;

/**
 * `url`, or the URL built from host/port/database/user (exactly one form). Built with every part encoded, so a
 * user or database name with "@", "/" or "%" means itself; a host starting with "/" is the directory of the
 * server's Unix socket, which pg takes from the URL's host once decoded.
 */
function postgresUrl(p: Record<string, unknown>): string {
  const parts = PG_PARTS.filter((k) => p[k] !== undefined);
  if (p.url !== undefined) {
    if (parts.length > 0) {
      throw new SignerConfigError(
        `${PG}.${parts[0]}`,
        `and url are two forms of one setting: give url, or host/port/database/user, not both (found url and ${parts.join(", ")})`,
      );
    }
    return str(p.url, `${PG}.url`);
  }
  if (parts.length === 0) throw new SignerConfigError(`${PG}.url`, "is required (postgres://user@host:port/database), or host, database and user");
  const host = str(p.host, `${PG}.host`);
  if (!host.startsWith("/") && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new SignerConfigError(`${PG}.host`, "must be a host name, an IPv4 address or (starting with /) the directory of the server's Unix socket");
  }
  const port = p.port === undefined ? 5432 : int(p.port, `${PG}.port`, 1, 65535);
  const database = str(p.database, `${PG}.database`);
  const user = str(p.user, `${PG}.user`);
  const urlHost = host.startsWith("/") ? encodeURIComponent(host) : host;
  return `postgres://${encodeURIComponent(user)}@${urlHost}:${port}/${encodeURIComponent(database)}`;
}

function postgresConnection(value: unknown, resolve: (p: string) => string): PostgresConnection {
  const p = obj(value, PG);
  if (p.password !== undefined) {
    throw new SignerConfigError(
      `${PG}.password`,
      "is not allowed: never put the password in the config; use passwordFile (a 0600 file) or passwordCredential (systemd LoadCredential=)",
    );
  }
  onlyKeys(p, ["url", ...PG_PARTS, "passwordFile", "passwordCredential", "tls", "poolSize", "allowServerAsyncCommitDefault"], PG);
  const url = postgresUrl(p);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SignerConfigError(`${PG}.url`, "is not a valid URL (postgres://user@host:port/database)");
  }
  // Never echo the URL in these messages: it may hold the very password being refused.
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") throw new SignerConfigError(`${PG}.url`, "must start with postgres://");
  if (parsed.password) throw new SignerConfigError(`${PG}.url`, "must not hold a password: use passwordFile or passwordCredential");
  if (parsed.search) throw new SignerConfigError(`${PG}.url`, "must not hold query parameters (set tls and poolSize in the config)");
  if (!parsed.hostname) throw new SignerConfigError(`${PG}.url`, "must name a host");
  const conn: PostgresConnection = { url };
  if (p.passwordFile !== undefined && p.passwordCredential !== undefined) {
    throw new SignerConfigError(`${PG}.passwordCredential`, "and passwordFile are exclusive: give one");
  }
  if (p.passwordFile !== undefined) conn.passwordFile = resolve(str(p.passwordFile, `${PG}.passwordFile`));
  if (p.passwordCredential !== undefined) {
    const name = str(p.passwordCredential, `${PG}.passwordCredential`);
    if (!/^[A-Za-z0-9_.:-]+$/.test(name) || name.startsWith(".")) throw new SignerConfigError(`${PG}.passwordCredential`, "must be a systemd credential name");
    conn.passwordCredential = name;
  }
  if (p.poolSize !== undefined) conn.poolSize = int(p.poolSize, `${PG}.poolSize`, 2, 100);
  if (p.allowServerAsyncCommitDefault !== undefined)
    conn.allowServerAsyncCommitDefault = bool(p.allowServerAsyncCommitDefault, `${PG}.allowServerAsyncCommitDefault`);
  if (p.tls !== undefined) {
    const t = obj(p.tls, `${PG}.tls`);
    onlyKeys(t, ["mode", "ca", "cert", "key"], `${PG}.tls`);
    if (!(PG_TLS_MODES as readonly unknown[]).includes(t.mode)) throw new SignerConfigError(`${PG}.tls.mode`, `must be one of ${PG_TLS_MODES.join(", ")}`);
    const tls: PostgresTls = { mode: t.mode as PostgresTls["mode"] };
    if (t.ca !== undefined) tls.ca = resolve(str(t.ca, `${PG}.tls.ca`));
    if (t.cert !== undefined) tls.cert = resolve(str(t.cert, `${PG}.tls.cert`));
    if (t.key !== undefined) tls.key = resolve(str(t.key, `${PG}.tls.key`));
    if ((tls.cert === undefined) !== (tls.key === undefined)) throw new SignerConfigError(`${PG}.tls`, "needs both cert and key, or neither");
    if (tls.mode === "disable" && (tls.ca ?? tls.cert) !== undefined) throw new SignerConfigError(`${PG}.tls`, `has files but mode "disable"`);
    // PostgreSQL offers no TLS on a Unix socket: the connection would fail at every start.
    if (tls.mode !== "disable" && typeof p.host === "string" && p.host.startsWith("/"))
      throw new SignerConfigError(`${PG}.tls.mode`, `must be "disable" with a Unix socket host (PostgreSQL has no TLS there)`);
    conn.tls = tls;
  }
  return conn;
}

/** "AB:CD:…" and "abcd…" compare equal. */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/:/g, "").toUpperCase();
}

/**
 * The slashing database a signer config names, as the signer would resolve it (its default file in `dataDir`
 * when it names none), without checking the rest: `vigil keys` reads it from a config that may hold only `hsm`.
 */
export function slashingDbOfConfig(value: unknown, baseDir: string): SlashingDbLocation {
  const v = obj(value, "");
  const resolve = (p: string) => path.resolve(baseDir, p);
  const dataDir = v.dataDir === undefined ? defaultDataDir() : resolve(str(v.dataDir, "dataDir"));
  return slashingDb(v.slashingDb, dataDir, resolve);
}

/** Checks a parsed config object. `baseDir` resolves relative paths (the config file's directory). */
export function parseSignerConfig(value: unknown, baseDir: string = process.cwd()): SignerConfig {
  const v = obj(value, "");
  onlyKeys(v, TOP_LEVEL, "");
  const resolve = (p: string) => path.resolve(baseDir, p);
  const dataDir = v.dataDir === undefined ? defaultDataDir() : resolve(str(v.dataDir, "dataDir"));

  let hsm: HsmConfig;
  try {
    const section = parseHsmSection(v.hsm);
    if (section.module === undefined) throw new SignerConfigError("hsm.module", "is required (path of the PKCS#11 library)");
    if (section.tokenLabel === undefined) throw new SignerConfigError("hsm.tokenLabel", "is required");
    if (section.pin === undefined) throw new SignerConfigError("hsm.pin", `is required ({"file": …}, {"env": …} or {"credential": …})`);
    const pin = "file" in section.pin ? { file: resolve(section.pin.file) } : section.pin;
    hsm = { module: section.module, tokenLabel: section.tokenLabel, pin };
  } catch (err) {
    if (err instanceof SignerConfigError) throw err;
    throw new SignerConfigError("", (err as Error).message.replace(/^config: /, ""));
  }

  const config: SignerConfig = {
    network: network(v.network, resolve),
    listen: v.listen === undefined ? { ...DEFAULT_LISTEN } : listen(v.listen, "listen"),
    metrics: { enabled: true },
    dataDir,
    slashingDb: slashingDb(v.slashingDb, dataDir, resolve),
    hsm,
    keymanager: { enabled: false, tokenFile: path.join(dataDir, "keymanager.token") },
    limits: { ...DEFAULT_LIMITS },
    logLevel: "info",
    logFormat: DEFAULT_LOG_STYLE.format,
    logTimestamp: DEFAULT_LOG_STYLE.timestamp,
    workers: 1,
    http: { hostAllowlist: [...DEFAULT_HTTP_GUARD.hostAllowlist], allowedOrigins: [...DEFAULT_HTTP_GUARD.allowedOrigins] },
    defaultClient: { allowedTypes: DEFAULT_ALLOWED_TYPES },
  };

  if (v.genesisValidatorsRoot !== undefined) {
    if (!isHexOfLength(v.genesisValidatorsRoot, 32)) throw new SignerConfigError("genesisValidatorsRoot", "must be 0x + 64 hex digits");
    config.genesisValidatorsRoot = normalizeHex(v.genesisValidatorsRoot);
  }
  // A public network fixes its root: pin it from the start; a different configured one is a mistake, not a choice.
  const networkRoot = config.network.genesisValidatorsRoot;
  if (networkRoot !== undefined) {
    if (config.genesisValidatorsRoot !== undefined && config.genesisValidatorsRoot !== networkRoot) {
      throw new SignerConfigError(
        "genesisValidatorsRoot",
        `${config.genesisValidatorsRoot} is not network ${config.network.name}'s genesis_validators_root ${networkRoot}`,
      );
    }
    config.genesisValidatorsRoot = networkRoot;
  }
  if (v.tls !== undefined) config.tls = tlsSettings(v.tls, "tls", resolve);
  if (v.http !== undefined) {
    const h = obj(v.http, "http");
    onlyKeys(h, ["hostAllowlist", "allowedOrigins"], "http");
    if (h.hostAllowlist !== undefined) config.http.hostAllowlist = stringList(h.hostAllowlist, "http.hostAllowlist", invalidHostAllowlistEntry);
    if (h.allowedOrigins !== undefined) config.http.allowedOrigins = stringList(h.allowedOrigins, "http.allowedOrigins", invalidOriginEntry);
  }
  if (v.metrics !== undefined) {
    const m = obj(v.metrics, "metrics");
    onlyKeys(m, ["enabled", "host", "port"], "metrics");
    config.metrics.enabled = m.enabled === undefined ? true : bool(m.enabled, "metrics.enabled");
    if (m.port !== undefined) config.metrics.listen = listen({ host: m.host ?? DEFAULT_LISTEN.host, port: m.port }, "metrics");
    else if (m.host !== undefined) throw new SignerConfigError("metrics.port", "is required when metrics.host is set");
  }
  config.clients = clients(v.clients, resolve, config.tls);
  if (v.defaultClient !== undefined) {
    if (config.clients !== undefined) throw new SignerConfigError("defaultClient", "applies only without clients (set allowedTypes on each client instead)");
    const d = obj(v.defaultClient, "defaultClient");
    onlyKeys(d, ["allowedTypes"], "defaultClient");
    if (d.allowedTypes !== undefined) config.defaultClient.allowedTypes = allowedTypes(d.allowedTypes, "defaultClient.allowedTypes");
  }
  if (v.admin !== undefined) {
    const a = obj(v.admin, "admin");
    onlyKeys(a, ["tokenFile"], "admin");
    config.admin = { tokenFile: resolve(str(a.tokenFile, "admin.tokenFile")) };
  }
  if (v.keymanager !== undefined) {
    const k = obj(v.keymanager, "keymanager");
    onlyKeys(k, ["enabled", "tokenFile"], "keymanager");
    if (k.enabled !== undefined) config.keymanager.enabled = bool(k.enabled, "keymanager.enabled");
    if (k.tokenFile !== undefined) config.keymanager.tokenFile = resolve(str(k.tokenFile, "keymanager.tokenFile"));
  }
  if (v.limits !== undefined) {
    const l = obj(v.limits, "limits");
    onlyKeys(
      l,
      [
        "maxQueueDepth",
        "bodyLimitBytes",
        "blsThreads",
        "maxWaitMs",
        "maxConnections",
        "headersTimeoutMs",
        "requestTimeoutMs",
        "idleTimeoutMs",
        "maxEpochsAhead",
      ],
      "limits",
    );
    if (l.maxEpochsAhead !== undefined) config.limits.maxEpochsAhead = int(l.maxEpochsAhead, "limits.maxEpochsAhead", 0, 1_000_000);
    if (l.maxQueueDepth !== undefined) config.limits.maxQueueDepth = int(l.maxQueueDepth, "limits.maxQueueDepth", 1, 1_000_000);
    if (l.bodyLimitBytes !== undefined) config.limits.bodyLimitBytes = int(l.bodyLimitBytes, "limits.bodyLimitBytes", 1024, 64 * 1024 * 1024);
    if (l.blsThreads !== undefined) config.limits.blsThreads = int(l.blsThreads, "limits.blsThreads", 1, 1024);
    if (l.maxWaitMs !== undefined) config.limits.maxWaitMs = int(l.maxWaitMs, "limits.maxWaitMs", 10, 60_000);
    if (l.maxConnections !== undefined) config.limits.maxConnections = int(l.maxConnections, "limits.maxConnections", 4, 1_000_000);
    if (l.headersTimeoutMs !== undefined) config.limits.headersTimeoutMs = int(l.headersTimeoutMs, "limits.headersTimeoutMs", 100, 600_000);
    if (l.requestTimeoutMs !== undefined) config.limits.requestTimeoutMs = int(l.requestTimeoutMs, "limits.requestTimeoutMs", 100, 600_000);
    if (l.idleTimeoutMs !== undefined) config.limits.idleTimeoutMs = int(l.idleTimeoutMs, "limits.idleTimeoutMs", 100, 3_600_000);
    if (config.limits.requestTimeoutMs < config.limits.headersTimeoutMs) {
      throw new SignerConfigError("limits.requestTimeoutMs", "must be at least limits.headersTimeoutMs (the headers are part of the request)");
    }
  }
  if (v.logLevel !== undefined) {
    if (!(LOG_LEVELS as readonly unknown[]).includes(v.logLevel)) throw new SignerConfigError("logLevel", `must be one of ${LOG_LEVELS.join(", ")}`);
    config.logLevel = v.logLevel as SignerConfig["logLevel"];
  }
  if (v.logFormat !== undefined) {
    if (!(LOG_FORMATS as readonly unknown[]).includes(v.logFormat)) throw new SignerConfigError("logFormat", `must be one of ${LOG_FORMATS.join(", ")}`);
    config.logFormat = v.logFormat as LogFormat;
  }
  if (v.logTimestamp !== undefined) {
    if (!(LOG_TIMESTAMPS as readonly unknown[]).includes(v.logTimestamp))
      throw new SignerConfigError("logTimestamp", `must be one of ${LOG_TIMESTAMPS.join(", ")}`);
    config.logTimestamp = v.logTimestamp as LogTimestamp;
  }
  config.clients?.forEach((c, i) => {
    if (c.tlsClientCertSha256 !== undefined && !config.tls?.requestClientCert) {
      throw new SignerConfigError(`clients[${i}].tlsClientCertSha256`, "needs tls with requestClientCert: true");
    }
  });
  if (v.softhsmConf !== undefined) config.softhsmConf = resolve(str(v.softhsmConf, "softhsmConf"));
  if (v.workers !== undefined) config.workers = int(v.workers, "workers", 1, MAX_WORKERS);
  checkPortClashes(config);
  checkWorkersBackend(config);
  return config;
}

/** More worker processes than this is a typo, not a host. */
export const MAX_WORKERS = 256;

/**
 * Several signer processes need a slashing database they can all write safely: PostgreSQL (row locks per
 * validator, client fencing shared in the database). A SQLite file has one writer, and its client fencing state
 * lives in each process: a client disabled through one worker would keep signing through another. Also
 * called after `--workers` overrides the config.
 */
export function checkWorkersBackend(config: SignerConfig): void {
  if (config.workers > 1 && config.slashingDb.kind !== "postgres") {
    throw new SignerConfigError(
      "workers",
      `is ${config.workers}, but more than 1 needs the PostgreSQL slashing database (slashingDb.postgres): a SQLite file has one writer and its client fencing state is per process`,
    );
  }
}

function checkPortClashes(config: SignerConfig): void {
  const seen = new Map<string, string>();
  const add = (addr: ListenAddress | undefined, field: string) => {
    if (!addr || addr.port === 0) return;
    const key = `${addr.host}:${addr.port}`;
    const other = seen.get(key);
    if (other) throw new SignerConfigError(field, `uses ${key}, already used by ${other}`);
    seen.set(key, field);
  };
  add(config.listen, "listen");
  add(config.metrics.listen, "metrics");
  for (const [i, c] of (config.clients ?? []).entries()) add(c.listen, `clients[${i}].listen`);
}

/** Reads and checks a config file. */
export function loadSignerConfig(file: string): SignerConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new SignerSetupError("CONFIG_NOT_FOUND", `cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, EXIT_CODES.notFound);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SignerConfigError("", `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseSignerConfig(parsed, path.dirname(path.resolve(file)));
}
