/**
 * startSigner: opens everything the signer needs in order (preset, slashing database, fencing state, audit
 * feed, key store → BLS pool), then listens. It resolves only when keys are loaded, the database is open and
 * every listener is up; close() undoes it gracefully (stop accepting, finish in-flight requests, commit, close).
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { pino, type DestinationStream, type Logger } from "pino";
import {
  daemonLogOptions,
  EXIT_CODES,
  ensurePrivateDir,
  HOST_ALLOW_ANY,
  isLoopbackAddress,
  NonBlockingLogDestination,
  styledDestination,
  VigilError,
} from "../../common/index.js";
import { openSlashingProtection, type BatchStats, type SlashingProtection } from "../../slashing-db/index.js";
import { openKeyStore, type KeyStore } from "../keystore/index.js";
import { BlsPool, loadConsensus, PRESET_SECONDS_PER_SLOT } from "../signing/index.js";
import type { ClientView } from "../../admin-api/index.js";
import { buildApp, healthDepsOf } from "./app.js";
import { localClientViews } from "./routes/admin.js";
import { healthReport, type HealthReport } from "./routes/health.js";
import { useFastSszHasher } from "./hasher.js";
import { AuditLog } from "./audit-log.js";
import { AuthFailureGuard, type AuthThrottleOptions } from "./auth-failures.js";
import { DataDirLock } from "./data-dir-lock.js";
import { ClientRegistry } from "./auth.js";
import type { ListenAddress, SignerConfig } from "./config.js";
import type { SignerContext } from "./context.js";
import type { ClientFencing } from "./fencing/client-fencing.js";
import { openClientFencing } from "./fencing/open.js";
import { KeyManager, type KeySiblings, type KeySync } from "./key-manager.js";
import { KeyReload } from "./reload.js";
import { DerivationPaths } from "./derivation-paths.js";
import { SignerMetrics } from "./metrics.js";
import { SigningService } from "./signing-service.js";
import { WallClockGuard } from "./wall-clock-guard.js";
import { readTokenFile, type TokenDigest } from "./tokens.js";

/** How long close() lets in-flight requests finish before it cuts their connections. */
const CLOSE_GRACE_MS = 10_000;
/** How long close() waits for buffered log lines to reach stdout before it drops them. */
const LOG_FLUSH_MS = 1_000;
/** Signatures per message to a BLS worker: small enough that replies stream back while the next batch is signed. */
const BLS_BATCH = 8;
/**
 * BLS workers run a little below the main thread, so that under overload the main thread still accepts, sheds (503)
 * and answers promptly instead of queueing requests in socket buffers behind signing.
 */
const BLS_NICENESS = 5;

export interface StartSignerOptions {
  /** Progress and readiness lines ("loading keys", "ready: …", "stopping"); e.g. for systemd sd_notify STATUS=. */
  status?: (text: string) => void;
  /** Where pino's JSON lines go (default: stdout). */
  logDestination?: DestinationStream;
  /**
   * Use this key store instead of opening `config.hsm`. For tests and benchmarks only (the CLI never sets it):
   * the signer closes it on close().
   */
  keyStore?: KeyStore;
  /** The data directory's lock, when the caller took it before touching the directory (--embedded); released on close(). */
  dataDirLock?: DataDirLock;
  /** Tunes the failed-authentication throttle (tests); the defaults are in auth-failures.ts. */
  authThrottle?: AuthThrottleOptions;
  /**
   * BENCH ONLY (the CLI never sets it): buffer block and attestation audit entries like the others, to measure
   * what writing them durably before the reply costs.
   */
  benchBufferedAudit?: boolean;
  /** Set when this signer is worker `worker` of a `--workers N` signer (signer/cluster/worker.ts). */
  cluster?: ClusterWorkerHooks;
}

/** What a node:cluster worker's signer shares with its primary and its siblings. */
export interface ClusterWorkerHooks {
  /** Its slot (0…N-1): the `worker` label of its metrics and log lines. */
  worker: number;
  /**
   * The group's data directory (config.dataDir is the worker's own under it): a client fencing state kept there
   * from a SQLite era is carried over into PostgreSQL from this one.
   */
  groupDataDir: string;
  /** /metrics of the whole process group, aggregated by the primary. */
  metricsText(): Promise<string>;
  /** Every worker's client views (the admin API merges them: each worker sees only its share of a client's requests). */
  clientViews(): Promise<ClientView[][]>;
  /** Key changes through the keymanager API reach the siblings before the reply. */
  siblings: KeySiblings;
  /** POST /reload at this worker: every worker of the group (this one included) re-enumerates the key store. */
  reloadGroup(): Promise<void>;
}

export interface RunningSigner {
  /** The main listener, e.g. http://127.0.0.1:9000 (the real port when 0 was configured). */
  readonly url: string;
  readonly metricsUrl: string | undefined;
  /** Dedicated client listeners by client id. */
  readonly clientUrls: Readonly<Record<string, string>>;
  readonly publicKeys: readonly string[];
  readonly logger: Logger;
  /** Cheap liveness: both database connections answer and at least one BLS worker runs (for the systemd watchdog). */
  healthy(): boolean;
  /** What GET /healthcheck answers. */
  health(): Promise<HealthReport>;
  /** Counters since start, for status lines. */
  stats(): { keys: number; signed: number; refused: number; inFlight: number };
  /** A sibling worker retired these keys (keymanager delete): stop signing them here; resolves once none is in flight. */
  retireKeys(pubkeys: string[]): Promise<void>;
  /** A sibling worker imported keys into the key store: load those not signable here yet. */
  reloadKeys(): Promise<void>;
  /** Re-enumerates the key store now (a `--workers N` group's reload, applied in this worker). */
  syncKeys(): Promise<KeySync>;
  /**
   * SIGHUP: starts a reload in the background as POST /reload does; false when one is already running. With
   * `--workers N` the primary reloads the group instead (cluster/supervisor.ts).
   */
  startReload(): boolean;
  /** This signer's own metrics as prom-client JSON (a `--workers N` primary merges every worker's). */
  localMetrics(): Promise<unknown[]>;
  /** This process's own views of its clients (a worker's share, for the group's admin API). */
  localClientViews(): ClientView[];
  /** Stops accepting, finishes and commits in-flight requests, then closes the database, the pool and the HSM session. */
  close(): Promise<void>;
}

/** Undo steps of a start in progress, run in reverse when a later step fails. */
type Cleanups = (() => Promise<void> | void)[];

/** Objects the metrics read live, bound as each step creates them (nothing is scraped before the listeners start). */
interface LiveRefs {
  service?: SigningService;
  pool?: BlsPool;
  slashing?: SlashingProtection;
  fencing?: ClientFencing;
  clients?: ClientRegistry;
  healthCtx?: SignerContext;
  audit?: AuditLog;
  /** close() has begun: vigil_signer_ready is 0 from here. */
  stopping?: boolean;
}

/** The signer's own state on disk and what identifies its callers. */
interface OpenedState {
  slashing: SlashingProtection;
  fencing: ClientFencing;
  audit: AuditLog;
  clients: ClientRegistry;
  adminToken: TokenDigest | undefined;
  keymanagerToken: TokenDigest | undefined;
}

interface LoadedKeys {
  keyStore: KeyStore;
  pool: BlsPool;
}

interface Listeners {
  apps: FastifyInstance[];
  url: string;
  clientUrls: Record<string, string>;
  metricsUrl: string | undefined;
}

/**
 * The steps, in this order: the data directory's lock before anything in it is touched; the preset (everything
 * computes with it); the state on disk (slashing database first: nothing may sign without it); keys (slowest,
 * and the pool needs the HSM); the signing service over all of it; listeners last, so no request arrives before
 * everything it needs is open. A failing step undoes the earlier ones in reverse.
 */
export async function startSigner(config: SignerConfig, options: StartSignerOptions = {}): Promise<RunningSigner> {
  const status = options.status ?? (() => {});
  const { logger, ownLog } = createLogger(config, options);
  const cleanups: Cleanups = [];
  try {
    // A shared PostgreSQL database is not in the data directory: opened first, so that its refusals (unreachable,
    // wrong password, another network's database...) leave the data directory as it was. Commits before the
    // metrics exist are not counted.
    let countCommit: ((s: BatchStats) => void) | undefined;
    const shared = config.slashingDb.kind === "postgres" ? await openSlashing(config, logger, (s) => countCommit?.(s), cleanups, status) : undefined;
    // Before anything in the data directory is opened: a second signer on it stops here (exit code 7).
    const lock = options.dataDirLock ?? DataDirLock.acquire(config.dataDir);
    cleanups.push(() => lock.release());
    status(`loading the ${config.network.preset} consensus preset`);
    const consensus = await loadConsensus(config.network.preset);
    const hasher = await useFastSszHasher();
    ensurePrivateDir(config.dataDir);

    // Metrics read live objects through these late-bound references.
    const live: LiveRefs = {};
    const metrics = createMetrics(live, ownLog);
    if (options.cluster) metrics.joinCluster(options.cluster.worker, options.cluster.metricsText);
    countCommit = (s) => metrics.commit(s);
    const state = await openState(config, metrics, logger, live, cleanups, status, shared, options.cluster?.groupDataDir);
    const keys = await loadKeys(config, options, logger, live, cleanups, status);
    const service = buildService(config, options, consensus, state, keys.pool, metrics, logger);
    live.service = service;
    warnAboutHostAllowlist(config, logger);
    const keyManager = new KeyManager({
      service,
      pool: keys.pool,
      keyStore: keys.keyStore,
      slashing: state.slashing,
      logger,
      genesisValidatorsRoot: config.genesisValidatorsRoot,
      derivationPaths: new DerivationPaths(options.cluster?.groupDataDir ?? config.dataDir),
      onKeyStoreError: (operation, count) => metrics.keyStoreError(operation, count),
      ...(options.cluster ? { siblings: options.cluster.siblings } : {}),
    });
    // With --workers N every worker reloads (through the primary, which also serialises it with key changes).
    const cluster = options.cluster;
    const reload = new KeyReload(cluster ? () => cluster.reloadGroup().then(() => undefined) : () => keyManager.syncWithKeyStore(), logger);
    const ctx: SignerContext = {
      config,
      logger,
      slashing: state.slashing,
      pool: keys.pool,
      keyStore: keys.keyStore,
      service,
      clients: state.clients,
      fencing: state.fencing,
      audit: state.audit,
      metrics,
      authFailures: new AuthFailureGuard(logger, (api, throttled) => metrics.authFailure(api, throttled), options.authThrottle),
      ...(state.adminToken ? { adminToken: state.adminToken } : {}),
      ...(state.keymanagerToken ? { keymanagerToken: state.keymanagerToken } : {}),
      keyManager,
      reload,
      ...(options.cluster ? { groupClientViews: options.cluster.clientViews } : {}),
    };
    live.healthCtx = ctx;

    const listeners = await startListeners(ctx, cleanups, status);
    const { url, clientUrls, metricsUrl } = listeners;
    const publicKeys = keys.pool.publicKeys;
    logger.info(
      {
        url,
        clientUrls,
        metricsUrl,
        keys: publicKeys.length,
        network: config.network.name,
        genesisValidatorsRoot: state.slashing.genesisValidatorsRoot,
        sszHasher: hasher,
      },
      "signer ready",
    );
    status(`ready: ${publicKeys.length} key(s) on ${url}`);

    let closing: Promise<void> | undefined;
    return {
      url,
      metricsUrl,
      clientUrls,
      publicKeys,
      logger,
      healthy: () => state.slashing.isAlive() && keys.pool.aliveThreads > 0,
      health: () => healthReport(healthDepsOf(ctx)),
      stats() {
        let signed = 0;
        let refused = 0;
        for (const c of ctx.clients.clients.values()) {
          signed += c.signed;
          refused += c.refused;
        }
        return { keys: ctx.service.keys.size, signed, refused, inFlight: ctx.service.queueDepth };
      },
      retireKeys: (pubkeys) => ctx.keyManager.retireForSibling(pubkeys),
      reloadKeys: () => ctx.keyManager.reloadForSibling(),
      syncKeys: () => reload.applied(ctx.keyManager.syncWithKeyStore()),
      startReload: () => reload.start("sighup"),
      localMetrics: () => metrics.registry.getMetricsAsJSON(),
      localClientViews: () => localClientViews(ctx),
      close() {
        live.stopping = true;
        closing ??= closeSigner({ listeners, state, keys, lock, logger, ownLog, status });
        return closing;
      },
    };
  } catch (err) {
    await unwind(cleanups);
    throw err;
  }
}

async function unwind(cleanups: Cleanups): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      /* best effort while failing */
    }
  }
}

function createLogger(config: SignerConfig, options: StartSignerOptions): { logger: Logger; ownLog: NonBlockingLogDestination | undefined } {
  // Logging never blocks signing or shutdown: lines that cannot be written now are dropped and counted.
  const ownLog = options.logDestination ? undefined : new NonBlockingLogDestination({ fd: 1 });
  const style = { format: config.logFormat, timestamp: config.logTimestamp };
  const logger = pino(
    {
      level: config.logLevel,
      // pid, hostname and service on every line, as in every daemon; a worker's slot too.
      ...daemonLogOptions("vigil-signer", style, options.cluster ? { worker: options.cluster.worker } : {}),
      // Defence in depth: credentials never reach a log line even if a header object is logged by mistake.
      redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization", "password", "passwords", "pin"], censor: "[redacted]" },
    },
    styledDestination(options.logDestination ?? ownLog!, style.format, { colorize: ownLog !== undefined && process.stdout.isTTY === true }),
  );
  return { logger, ownLog };
}

function createMetrics(live: LiveRefs, ownLog: NonBlockingLogDestination | undefined): SignerMetrics {
  return new SignerMetrics({
    queueDepth: () => ({ total: live.service?.queueDepth ?? 0, slashingDb: live.slashing?.queueDepth ?? 0, bls: live.pool?.queueDepth ?? 0 }),
    keysLoaded: () => live.service?.keys.size ?? 0,
    generation: () => live.fencing?.generation ?? 0,
    clientsEnabled: () => [...(live.clients?.clients.keys() ?? [])].map((id) => ({ id, enabled: live.fencing?.isEnabled(id) ?? true })),
    blsThreads: () => live.pool?.aliveThreads ?? 0,
    logLinesDropped: () => ownLog?.dropped ?? 0,
    health: async () => (live.healthCtx ? healthReport(healthDepsOf(live.healthCtx)) : undefined),
    stopping: () => live.stopping === true,
    clientsLastSignature: () => [...(live.clients?.clients.values() ?? [])].map((c) => ({ id: c.id, atMs: c.lastSignedAt })),
    slashingDbSizeBytes: () => (live.slashing ? withinMs(live.slashing.sizeBytes(), SIZE_QUERY_TIMEOUT_MS) : Promise.resolve(undefined)),
    auditWriteFailures: () => live.audit?.writeFailures ?? 0,
  });
}

/** A scrape does not wait on a database that does not answer: the size is left out of that scrape instead. */
const SIZE_QUERY_TIMEOUT_MS = 2_000;

/** `p`'s value, or undefined if it fails or takes longer than `ms`. */
async function withinMs<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([p.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The slashing database (both connections), the fencing state, the audit feed, the clients and the API tokens. */
async function openState(
  config: SignerConfig,
  metrics: SignerMetrics,
  logger: Logger,
  live: LiveRefs,
  cleanups: Cleanups,
  status: (text: string) => void,
  opened: SlashingProtection | undefined,
  groupDataDir: string | undefined,
): Promise<OpenedState> {
  const slashing = opened ?? (await openSlashing(config, logger, (s) => metrics.commit(s), cleanups, status));
  live.slashing = slashing;

  // With PostgreSQL, in the same database: a fence written through any instance holds at all of them.
  const openedFencing = await openClientFencing(config.slashingDb, groupDataDir ?? config.dataDir, config.clients, (message) => logger.warn(message));
  live.fencing = openedFencing;
  cleanups.push(() => openedFencing.close());
  const audit = AuditLog.open(path.join(config.dataDir, "audit"));
  live.audit = audit;
  cleanups.push(() => audit.close());
  const clients = new ClientRegistry(config.clients, config.defaultClient.allowedTypes);
  live.clients = clients;
  const adminToken = config.admin ? readTokenFile(config.admin.tokenFile, { create: true, what: "admin" }) : undefined;
  const keymanagerToken = config.keymanager.enabled ? readTokenFile(config.keymanager.tokenFile, { create: true, what: "keymanager" }) : undefined;
  return { slashing, fencing: openedFencing, audit, clients, adminToken, keymanagerToken };
}

/**
 * The slashing database the config names. On SQLite, check-and-record runs on a thread of its own (its group
 * commits and fsyncs never block this one); on PostgreSQL, on the pool's connections.
 */
async function openSlashing(
  config: SignerConfig,
  logger: Logger,
  onCommit: (s: BatchStats) => void,
  cleanups: Cleanups,
  status: (text: string) => void,
): Promise<SlashingProtection> {
  status(`opening the slashing-protection database (${config.slashingDb.kind})`);
  const slashing = await openSlashingProtection(config.slashingDb, {
    ...(config.genesisValidatorsRoot ? { genesisValidatorsRoot: config.genesisValidatorsRoot } : {}),
    onCommit,
    onPinFailure: (err) => logger.error({ err: err.message }, "could not pass the network pin to the slashing-protection worker; its checks fail closed"),
  });
  cleanups.push(() => slashing.close().then(() => undefined));
  return slashing;
}

/** The key store (HSM) and the BLS pool holding its keys. */
async function loadKeys(
  config: SignerConfig,
  options: StartSignerOptions,
  logger: Logger,
  live: LiveRefs,
  cleanups: Cleanups,
  status: (text: string) => void,
): Promise<LoadedKeys> {
  status("loading keys from the key store");
  // SoftHSM2 reads SOFTHSM2_CONF when its module is first initialised in this process.
  if (config.softhsmConf !== undefined && options.keyStore === undefined) process.env.SOFTHSM2_CONF = config.softhsmConf;
  const keyStore = options.keyStore ?? openKeyStore(config.hsm);
  cleanups.push(() => keyStore.close());
  const loaded = await keyStore.load(); // a failure stops the start (exit code): nothing scrapes a counter of it
  const secrets = [...loaded.exportForWorkers().values()];
  const startedPool = await BlsPool.start(secrets, {
    preset: config.network.preset,
    threads: config.limits.blsThreads,
    // The service admits at most maxQueueDepth requests; the pool never needs to refuse one of them.
    maxQueueDepth: config.limits.maxQueueDepth + 1024,
    maxBatchSize: BLS_BATCH,
    niceness: BLS_NICENESS,
    onWorkerFailure: (err) => logger.error({ err: err.message }, "a BLS worker thread died; signing continues on the others"),
  }); // zeroes `secrets`
  live.pool = startedPool;
  cleanups.push(() => startedPool.close());
  return { keyStore, pool: startedPool };
}

/** The sign path over the opened state and the pool (nothing to undo: it holds no resource of its own). */
function buildService(
  config: SignerConfig,
  options: StartSignerOptions,
  consensus: { slotsPerEpoch: number },
  state: OpenedState,
  startedPool: BlsPool,
  metrics: SignerMetrics,
  logger: Logger,
): SigningService {
  const { slashing, fencing: openedFencing, audit } = state;
  const service = new SigningService({
    network: config.network,
    slashing,
    pool: startedPool,
    fencing: openedFencing,
    audit,
    durableAudit: options.benchBufferedAudit !== true,
    maxQueueDepth: config.limits.maxQueueDepth,
    ...(config.network.genesisTime !== undefined
      ? {
          wallClock: new WallClockGuard({
            genesisTime: config.network.genesisTime,
            secondsPerSlot: config.network.secondsPerSlot ?? PRESET_SECONDS_PER_SLOT[config.network.preset],
            slotsPerEpoch: consensus.slotsPerEpoch,
            maxEpochsAhead: config.limits.maxEpochsAhead,
          }),
        }
      : {}),
    maxWaitMs: config.limits.maxWaitMs,
    onShed: (reason) => metrics.requestShed(reason),
  });
  if (config.network.genesisTime === undefined) {
    logger.info({ network: config.network.name }, "network.genesisTime is not known: blocks and attestations far ahead of the wall clock are not refused");
  }
  return service;
}

/** The main listener, one per client with a dedicated address, and the metrics listener if it has its own. */
async function startListeners(ctx: SignerContext, cleanups: Cleanups, status: (text: string) => void): Promise<Listeners> {
  const { config, logger } = ctx;
  status("starting listeners");
  const apps: FastifyInstance[] = [];
  cleanups.push(() => Promise.all(apps.map((a) => a.close())).then(() => undefined));
  const listenOn = async (app: FastifyInstance, addr: ListenAddress, https: boolean): Promise<string> => {
    apps.push(app);
    await app.listen({ host: addr.host, port: addr.port });
    const bound = app.server.address() as AddressInfo;
    const host = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
    return `${https ? "https" : "http"}://${host}:${bound.port}`;
  };
  const url = await listenOn(buildApp(ctx, { kind: "main" }), config.listen, config.tls !== undefined);
  const clientUrls: Record<string, string> = {};
  for (const c of config.clients ?? []) {
    if (!c.listen) continue;
    if (!isLoopback(c.listen.host)) {
      logger.warn({ client: c.id, host: c.listen.host }, "a dedicated client listener is not on loopback: anyone who reaches it signs as that client");
    }
    clientUrls[c.id] = await listenOn(buildApp(ctx, { kind: "client", client: ctx.clients.get(c.id)! }), c.listen, c.listenTls !== undefined);
  }
  const metricsUrl =
    config.metrics.enabled && config.metrics.listen
      ? await listenOn(buildApp(ctx, { kind: "metrics" }), config.metrics.listen, false)
      : config.metrics.enabled
        ? url
        : undefined;
  return { apps, url, clientUrls, metricsUrl };
}

/**
 * The close sequence, the start's in reverse: stop accepting and finish in-flight requests (they await their
 * commit and signature), then the pool, the database (committing what is queued; reports whether it closed
 * cleanly), the fencing state, the audit feed, the HSM session, and last the data directory's lock.
 */
async function closeSigner(s: {
  listeners: Listeners;
  state: OpenedState;
  keys: LoadedKeys;
  lock: DataDirLock;
  logger: Logger;
  ownLog: NonBlockingLogDestination | undefined;
  status: (text: string) => void;
}): Promise<void> {
  const { listeners, state, keys, lock, logger, ownLog, status } = s;
  const { apps } = listeners;
  status("stopping: finishing in-flight requests");
  logger.info("signer stopping");
  // fastify.close() stops accepting and waits for in-flight requests, which await their commit and signature.
  // It closes the keep-alive connections idle at that moment only: close each one as it becomes idle, and
  // after the grace period every connection (a client holding a request open must not block shutdown).
  const started = Date.now();
  const reaper = setInterval(() => {
    for (const a of apps) {
      if (Date.now() - started > CLOSE_GRACE_MS) a.server.closeAllConnections();
      else a.server.closeIdleConnections();
    }
  }, 25);
  try {
    await Promise.all(apps.map((a) => a.close()));
  } finally {
    clearInterval(reaper);
  }
  await keys.pool.close();
  // Commits anything still queued; each connection reports whether it closed cleanly.
  const dbProblems = await state.slashing.close();
  await state.fencing.close();
  await state.audit.close();
  await keys.keyStore.close();
  lock.release();
  if (dbProblems.length > 0) {
    logger.error({ problems: dbProblems }, "slashing-protection database not closed cleanly");
    status("stopped; the slashing-protection database was not closed cleanly");
    await ownLog?.close(LOG_FLUSH_MS);
    throw new DbNotClosedCleanlyError(dbProblems);
  }
  logger.info("signer stopped");
  await ownLog?.close(LOG_FLUSH_MS);
  status("stopped");
}

/**
 * The signer stopped, but its slashing-protection database reported errors while closing (disk full, read-only,
 * a failed last commit or checkpoint). Every signature released was recorded first; the WAL file next to the
 * database may hold the latest records: keep it with the database, fix the disk, then start again.
 */
export class DbNotClosedCleanlyError extends VigilError<"DB_NOT_CLOSED_CLEANLY"> {
  constructor(readonly problems: string[]) {
    super(
      "DB_NOT_CLOSED_CLEANLY",
      `stopped, but the slashing-protection database was not closed cleanly: ${problems.join("; ")}`,
      EXIT_CODES.dbNotClosedCleanly,
    );
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * A listener on a non-loopback or wildcard address with only the default Host names: clients that reach it by
 * another name are refused (by design: a wildcard address names no host). Say so once at start.
 */
function warnAboutHostAllowlist(config: SignerConfig, logger: Logger): void {
  if (config.http.hostAllowlist.includes(HOST_ALLOW_ANY)) {
    logger.warn('http.hostAllowlist contains "*": any Host is accepted, so a web page can reach this signer by DNS rebinding');
    return;
  }
  if (config.http.hostAllowlist.length > 0) return;
  const exposed = [config.listen, config.metrics.listen, ...(config.clients ?? []).map((c) => c.listen)].filter(
    (a): a is ListenAddress => a !== undefined && !isLoopbackAddress(a.host),
  );
  for (const a of exposed) {
    logger.warn(
      { host: a.host, port: a.port },
      "a listener is not on loopback but http.hostAllowlist is empty: only localhost, 127.0.0.1, [::1] and the listen address itself are accepted as Host; list the names remote clients use",
    );
  }
}
