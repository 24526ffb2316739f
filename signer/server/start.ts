/**
 * startSigner: opens everything the signer needs in order (preset, slashing database, fencing state, audit
 * feed, key store → BLS pool), then listens. It resolves only when keys are loaded, the database is open and
 * every listener is up; close() undoes it gracefully (stop accepting, finish in-flight requests, commit, close).
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { pino, type DestinationStream, type Logger } from "pino";
import { EXIT_CODES, ensurePrivateDir, HOST_ALLOW_ANY, isLoopbackAddress, NonBlockingLogDestination, VigilError } from "../../config/index.js";
import { ThreadedSlashingProtection } from "../../slashing-db/index.js";
import { openKeyStore, type KeyStore } from "../keystore/index.js";
import { BlsPool, loadConsensus } from "../signing/index.js";
import { buildApp } from "./app.js";
import { healthReport, type HealthReport } from "./routes/health.js";
import { useFastSszHasher } from "./hasher.js";
import { AuditLog } from "./audit-log.js";
import { AuthFailureGuard, type AuthThrottleOptions } from "./auth-failures.js";
import { DataDirLock } from "./data-dir-lock.js";
import { ClientRegistry } from "./auth.js";
import type { ListenAddress, SignerConfig } from "./config.js";
import type { SignerContext } from "./context.js";
import { FencingStore } from "./fencing-store.js";
import { SignerMetrics } from "./metrics.js";
import { SigningService } from "./signing-service.js";
import { WallClockGuard } from "./wall-clock-guard.js";
import { readTokenFile } from "./tokens.js";

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
  /** Stops accepting, finishes and commits in-flight requests, then closes the database, the pool and the HSM session. */
  close(): Promise<void>;
}

export async function startSigner(config: SignerConfig, options: StartSignerOptions = {}): Promise<RunningSigner> {
  const status = options.status ?? (() => {});
  // Logging never blocks signing or shutdown: lines that cannot be written now are dropped and counted.
  const ownLog = options.logDestination ? undefined : new NonBlockingLogDestination({ fd: 1 });
  const logger = pino(
    {
      level: config.logLevel,
      base: { name: "vigil-signer" },
      // Defence in depth: credentials never reach a log line even if a header object is logged by mistake.
      redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization", "password", "passwords", "pin"], censor: "[redacted]" },
    },
    options.logDestination ?? ownLog!,
  );
  const cleanups: (() => Promise<void> | void)[] = [];
  const unwind = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        /* best effort while failing */
      }
    }
  };

  try {
    // Before anything in the data directory is opened: a second signer on it stops here (exit code 7).
    const lock = options.dataDirLock ?? DataDirLock.acquire(config.dataDir);
    cleanups.push(() => lock.release());
    status(`loading the ${config.network.preset} consensus preset`);
    const consensus = await loadConsensus(config.network.preset);
    const hasher = await useFastSszHasher();
    ensurePrivateDir(config.dataDir);

    // Metrics read live objects through these late-bound references.
    let service: SigningService | undefined;
    let pool: BlsPool | undefined;
    let slashing: ThreadedSlashingProtection | undefined;
    let fencing: FencingStore | undefined;
    let clients: ClientRegistry | undefined;
    let healthCtx: SignerContext | undefined;
    const metrics = new SignerMetrics({
      queueDepth: () => ({ total: service?.queueDepth ?? 0, slashingDb: slashing?.queueDepth ?? 0, bls: pool?.queueDepth ?? 0 }),
      keysLoaded: () => service?.keys.size ?? 0,
      generation: () => fencing?.generation ?? 0,
      clientsEnabled: () => [...(clients?.clients.keys() ?? [])].map((id) => ({ id, enabled: fencing?.isEnabled(id) ?? true })),
      blsThreads: () => pool?.aliveThreads ?? 0,
      logLinesDropped: () => ownLog?.dropped ?? 0,
      healthChecks: async () => (healthCtx ? (await healthReport(healthCtx)).checks : []),
    });

    status("opening the slashing-protection database");
    // Check-and-record runs on a thread of its own (its group commits and fsyncs never block this one).
    const protection = await ThreadedSlashingProtection.open(config.slashingDb, {
      ...(config.genesisValidatorsRoot ? { genesisValidatorsRoot: config.genesisValidatorsRoot } : {}),
      onCommit: (s) => metrics.commit(s),
      onPinFailure: (err) => logger.error({ err: err.message }, "could not pass the network pin to the slashing-protection worker; its checks fail closed"),
    });
    slashing = protection;
    cleanups.push(() => protection.close().then(() => undefined));

    const openedFencing = FencingStore.open(
      path.join(config.dataDir, "signer-state.sqlite"),
      new Map((config.clients ?? []).map((c) => [c.id, c.initiallyEnabled])),
    );
    fencing = openedFencing;
    cleanups.push(() => openedFencing.close());
    const audit = AuditLog.open(path.join(config.dataDir, "audit"));
    cleanups.push(() => audit.close());
    clients = new ClientRegistry(config.clients, config.defaultClient.allowedTypes);
    const adminToken = config.admin ? readTokenFile(config.admin.tokenFile, { create: true, what: "admin" }) : undefined;
    const keymanagerToken = config.keymanager.enabled ? readTokenFile(config.keymanager.tokenFile, { create: true, what: "keymanager" }) : undefined;

    status("loading keys from the key store");
    // SoftHSM2 reads SOFTHSM2_CONF when its module is first initialised in this process.
    if (config.softhsmConf !== undefined && options.keyStore === undefined) process.env.SOFTHSM2_CONF = config.softhsmConf;
    const keyStore = options.keyStore ?? openKeyStore(config.hsm);
    cleanups.push(() => keyStore.close());
    const loaded = await keyStore.load();
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
    pool = startedPool;
    cleanups.push(() => startedPool.close());

    service = new SigningService({
      network: config.network,
      slashing: protection,
      pool: startedPool,
      fencing: openedFencing,
      audit,
      durableAudit: options.benchBufferedAudit !== true,
      maxQueueDepth: config.limits.maxQueueDepth,
      ...(config.network.genesisTime !== undefined
        ? {
            wallClock: new WallClockGuard({
              genesisTime: config.network.genesisTime,
              secondsPerSlot: config.network.secondsPerSlot ?? (config.network.preset === "minimal" ? 6 : 12),
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
    warnAboutHostAllowlist(config, logger);
    const ctx: SignerContext = {
      config,
      logger,
      slashing: protection,
      pool: startedPool,
      keyStore,
      service,
      clients,
      fencing: openedFencing,
      audit,
      metrics,
      authFailures: new AuthFailureGuard(logger, (api, throttled) => metrics.authFailure(api, throttled), options.authThrottle),
      ...(adminToken ? { adminToken } : {}),
      ...(keymanagerToken ? { keymanagerToken } : {}),
      keyChanges: { tail: Promise.resolve() },
    };
    healthCtx = ctx;

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
      clientUrls[c.id] = await listenOn(buildApp(ctx, { kind: "client", client: clients.get(c.id)! }), c.listen, c.listenTls !== undefined);
    }
    const metricsUrl =
      config.metrics.enabled && config.metrics.listen ? await listenOn(buildApp(ctx, { kind: "metrics" }), config.metrics.listen, false) : config.metrics.enabled ? url : undefined;

    const publicKeys = startedPool.publicKeys;
    logger.info(
      { url, clientUrls, metricsUrl, keys: publicKeys.length, network: config.network.name, genesisValidatorsRoot: protection.genesisValidatorsRoot, sszHasher: hasher },
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
      healthy: () => protection.isAlive() && startedPool.aliveThreads > 0,
      health: () => healthReport(ctx),
      stats() {
        let signed = 0;
        let refused = 0;
        for (const c of ctx.clients.clients.values()) {
          signed += c.signed;
          refused += c.refused;
        }
        return { keys: ctx.service.keys.size, signed, refused, inFlight: ctx.service.queueDepth };
      },
      close() {
        closing ??= (async () => {
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
          await startedPool.close();
          // Commits anything still queued; each connection reports whether it closed cleanly.
          const dbProblems = await protection.close();
          openedFencing.close();
          await audit.close();
          await keyStore.close();
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
        })();
        return closing;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/**
 * The signer stopped, but its slashing-protection database reported errors while closing (disk full, read-only,
 * a failed last commit or checkpoint). Every signature released was recorded first; the WAL file next to the
 * database may hold the latest records: keep it with the database, fix the disk, then start again.
 */
export class DbNotClosedCleanlyError extends VigilError {
  constructor(readonly problems: string[]) {
    super("DB_NOT_CLOSED_CLEANLY", `stopped, but the slashing-protection database was not closed cleanly: ${problems.join("; ")}`, EXIT_CODES.dbNotClosedCleanly);
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
