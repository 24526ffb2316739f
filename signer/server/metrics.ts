/**
 * Prometheus metrics of the signer. Label children are resolved once per (type, outcome), so the hot path
 * does a Map lookup and an add, not a label hash per request.
 */
import client from "prom-client";
import { registerBuildInfo, registerRunningTotal } from "../../common/index.js";
import type { BatchStats } from "../../slashing-db/index.js";
import { SIGN_TYPES } from "../signing/index.js";

/** How a sign request ended; one label value each. */
export const OUTCOMES = [
  "signed",
  "invalid", // 400
  "unknown_key", // 404
  "refused", // 412 slashing protection or another network
  "not_allowed", // 401/403: unauthenticated, key outside the client's list, client disabled
  "overloaded", // 503 queue full
  "db_unavailable", // 503 the slashing database could not record the check (cause: vigil_signer_slashing_db_unavailable_total)
  "audit_unavailable", // 503 the audit feed could not be written durably, signature withheld (cause: vigil_signer_audit_log_unavailable_total)
  "bls_unavailable", // 503 no BLS worker could sign
  "error", // 500
] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface SignerGauges {
  queueDepth(): { total: number; slashingDb: number; bls: number };
  keysLoaded(): number;
  generation(): number;
  clientsEnabled(): { id: string; enabled: boolean }[];
  blsThreads(): number;
  /** Log lines dropped because stdout could not take them (full disk, a reader that stopped reading). */
  logLinesDropped?(): number;
  /** The /healthcheck report (undefined until the signer is up): one gauge per check, and readiness. */
  health?(): Promise<{ outcome: "UP" | "DOWN"; checks: { id: string; status: "UP" | "DOWN" }[] } | undefined>;
  /** close() has begun: no longer ready, whatever the checks say. */
  stopping?(): boolean;
  /** Each client's last signature handed out (ms since the epoch), null before its first. */
  clientsLastSignature?(): { id: string; atMs: number | null }[];
  /** Bytes the slashing database takes (SlashingProtection.sizeBytes); undefined while it cannot be read. */
  slashingDbSizeBytes?(): Promise<number | undefined>;
  /** Audit-feed writes that failed since start (AuditLog.writeFailures). */
  auditWriteFailures?(): number;
}

/** vigil_signer_keymanager_operations_total's outcome: the keymanager API's per-key status lower-cased, or "ok" for a list. */
export type KeymanagerOperation = "list" | "import" | "delete";
/** Where a key-store (HSM, PKCS#11) operation failed: vigil_signer_keystore_errors_total{operation}. */
export type KeyStoreOperation = "load" | "import" | "delete" | "reload";

export class SignerMetrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter<"type" | "outcome">;
  private readonly latency: client.Histogram<"type">;
  private readonly refusals: client.Counter<"reason">;
  private readonly httpRefusals: client.Counter<"listener" | "code">;
  private readonly dbUnavailable: client.Counter<"cause">;
  private readonly auditUnavailable: client.Counter<"cause">;
  private readonly commitSize: client.Histogram;
  private readonly commitDuration: client.Histogram;
  private readonly authFailures: client.Counter<"api">;
  private readonly authThrottled: client.Counter<"api">;
  private readonly connectionsShed: client.Counter<"listener" | "reason">;
  private readonly requestsShed: client.Counter<"reason">;
  private readonly keymanagerOps: client.Counter<"operation" | "outcome">;
  private readonly keyStoreErrors: client.Counter<"operation">;
  private readonly requestChildren = new Map<string, client.Counter.Internal>();
  private readonly latencyChildren = new Map<string, client.Histogram.Internal<"type">>();

  constructor(gauges: SignerGauges) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry }); // standard process_* and nodejs_* names
    this.requests = new client.Counter({
      name: "vigil_signer_requests_total",
      help: "Signing requests answered, by request type and outcome",
      labelNames: ["type", "outcome"],
      registers,
    });
    this.latency = new client.Histogram({
      name: "vigil_signer_request_duration_seconds",
      help: "Time from a signing request's arrival to its reply, by request type",
      labelNames: ["type"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.refusals = new client.Counter({
      name: "vigil_signer_slashing_refusals_total",
      help: "Requests refused by slashing protection (or for another network), by reason",
      labelNames: ["reason"],
      registers,
    });
    this.httpRefusals = new client.Counter({
      name: "vigil_signer_http_refusals_total",
      help: "Requests refused before routing by the Host/Origin guard (web pages), by listener kind and code",
      labelNames: ["listener", "code"],
      registers,
    });
    this.connectionsShed = new client.Counter({
      name: "vigil_signer_connections_shed_total",
      help: "Connections closed for a listener's connection budget: evicted (the one longest without a complete request) or refused (all busy)",
      labelNames: ["listener", "reason"],
      registers,
    });
    this.requestsShed = new client.Counter({
      name: "vigil_signer_requests_shed_total",
      help: "Signing requests shed under load, by reason: expected_wait (503, would wait over limits.maxWaitMs), queue_full (503, limits.maxQueueDepth), client_gone (connection closed before its signature; skipped)",
      labelNames: ["reason"],
      registers,
    });
    this.commitSize = new client.Histogram({
      name: "vigil_slashing_db_commit_batch_size",
      help: "Checks committed per slashing-database group commit",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    this.commitDuration = new client.Histogram({
      name: "vigil_slashing_db_commit_duration_seconds",
      help: "Duration of one slashing-database group commit (including fsync)",
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    });
    this.authFailures = new client.Counter({
      name: "vigil_signer_auth_failures_total",
      help: "Failed authentications (missing or wrong token, unknown client), by API: admin, keymanager, eth2",
      labelNames: ["api"],
      registers,
    });
    this.authThrottled = new client.Counter({
      name: "vigil_signer_auth_throttled_total",
      help: "Failed authentications answered 429 because their address (or all addresses) failed too often, by API",
      labelNames: ["api"],
      registers,
    });
    new client.Gauge({
      name: "vigil_signer_queue_depth",
      help: "Signing requests accepted and not yet answered (total), waiting for a group commit, or in the BLS pool",
      labelNames: ["stage"],
      registers,
      collect() {
        const q = gauges.queueDepth();
        this.set({ stage: "total" }, q.total);
        this.set({ stage: "slashing_db" }, q.slashingDb);
        this.set({ stage: "bls" }, q.bls);
      },
    });
    new client.Gauge({
      name: "vigil_signer_keys_loaded",
      help: "Validator keys loaded and available for signing",
      registers,
      collect() {
        this.set(gauges.keysLoaded());
      },
    });
    new client.Gauge({
      name: "vigil_signer_bls_threads_alive",
      help: "BLS worker threads running",
      registers,
      collect() {
        this.set(gauges.blsThreads());
      },
    });
    new client.Gauge({
      name: "vigil_signer_fencing_generation",
      help: "The signer's fencing generation (admin API)",
      registers,
      collect() {
        this.set(gauges.generation());
      },
    });
    new client.Gauge({
      name: "vigil_signer_client_enabled",
      help: "1 if the client may sign, 0 if it was disabled through the admin API",
      labelNames: ["client"],
      registers,
      collect() {
        for (const c of gauges.clientsEnabled()) this.set({ client: c.id }, c.enabled ? 1 : 0);
      },
    });
    this.dbUnavailable = new client.Counter({
      name: "vigil_signer_slashing_db_unavailable_total",
      help: "Signing requests refused (503) because the slashing database could not record them, by cause",
      labelNames: ["cause"],
      registers,
    });
    this.auditUnavailable = new client.Counter({
      name: "vigil_signer_audit_log_unavailable_total",
      help: "Signatures withheld (503) because their audit entry could not be written durably, by cause",
      labelNames: ["cause"],
      registers,
    });
    // One /healthcheck report per scrape for the two gauges built on it (it asks the HSM and the database): a scrape
    // starts every collector in the same tick, so they share the report in flight; the next scrape asks again.
    let healthInFlight: ReturnType<NonNullable<SignerGauges["health"]>> | undefined;
    const healthOfThisScrape = () =>
      (healthInFlight ??= (gauges.health?.() ?? Promise.resolve(undefined)).finally(() => {
        healthInFlight = undefined;
      }));
    new client.Gauge({
      name: "vigil_signer_health_check_up",
      help: "1 if the /healthcheck check is UP, 0 if DOWN (its cause is in the /healthcheck body)",
      labelNames: ["check"],
      registers,
      async collect() {
        for (const c of (await healthOfThisScrape())?.checks ?? []) this.set({ check: c.id }, c.status === "UP" ? 1 : 0);
      },
    });
    registerRunningTotal(
      this.registry,
      "vigil_log_lines_dropped_total",
      "Log lines dropped because the log destination could not take them (full disk, blocked reader)",
      () => gauges.logLinesDropped?.() ?? 0,
    );
    registerBuildInfo(this.registry);
    new client.Gauge({
      name: "vigil_signer_ready",
      help: "1 when the signer is ready to sign (the /healthcheck outcome is UP and it is not stopping), else 0",
      registers,
      aggregator: "min", // merged only if unlabelled: a group is ready when all are (each worker keeps its own series)
      async collect() {
        const report = await healthOfThisScrape();
        this.set(report?.outcome === "UP" && !gauges.stopping?.() ? 1 : 0);
      },
    });
    new client.Gauge({
      name: "vigil_signer_client_last_signature_timestamp_seconds",
      help: "Unix time of the client's last signature handed out (absent until its first); alert on its age while the client is enabled",
      labelNames: ["client"],
      registers,
      aggregator: "max",
      collect() {
        for (const c of gauges.clientsLastSignature?.() ?? []) if (c.atMs !== null) this.set({ client: c.id }, c.atMs / 1000);
      },
    });
    this.keymanagerOps = new client.Counter({
      name: "vigil_signer_keymanager_operations_total",
      help: "Keymanager API operations: list (outcome ok), and per key import (imported, duplicate, error) and delete (deleted, not_active, not_found, error)",
      labelNames: ["operation", "outcome"],
      registers,
    });
    this.keyStoreErrors = new client.Counter({
      name: "vigil_signer_keystore_errors_total",
      help: "Key-store (HSM, PKCS#11) operations that failed, by operation: load (a record refused at loading), import, delete, reload",
      labelNames: ["operation"],
      registers,
    });
    registerRunningTotal(
      this.registry,
      "vigil_signer_audit_log_write_failures_total",
      "Audit-feed writes (append, fdatasync, sequence reservation) that failed, whether or not a signature was withheld",
      () => gauges.auditWriteFailures?.() ?? 0,
    );
    new client.Gauge({
      name: "vigil_slashing_db_size_bytes",
      help: "Bytes the slashing database takes: the SQLite file and its -wal, or PostgreSQL's pg_database_size",
      registers,
      aggregator: "max", // every worker of a group reads the same database
      async collect() {
        const bytes = await gauges.slashingDbSizeBytes?.();
        if (bytes !== undefined) this.set(bytes);
      },
    });
    // Series that alerts take increase() of exist from the start at 0: a counter first seen at 40 would hide its first 40.
    for (const api of ["admin", "keymanager", "eth2"]) {
      this.authFailures.inc({ api }, 0);
      this.authThrottled.inc({ api }, 0);
    }
    for (const operation of ["load", "import", "delete", "reload"] as const) this.keyStoreErrors.inc({ operation }, 0);
    this.keymanagerOps.inc({ operation: "list", outcome: "ok" }, 0);
    for (const outcome of ["imported", "duplicate", "error"]) this.keymanagerOps.inc({ operation: "import", outcome }, 0);
    for (const outcome of ["deleted", "not_active", "not_found", "error"]) this.keymanagerOps.inc({ operation: "delete", outcome }, 0);
    for (const type of [...SIGN_TYPES, "UNKNOWN"]) {
      this.latencyChildren.set(type, this.latency.labels({ type }));
      for (const outcome of OUTCOMES) this.requestChildren.set(`${type}|${outcome}`, this.requests.labels({ type, outcome }));
    }
  }

  /** Records one answered sign request. `type` outside SIGN_TYPES counts as UNKNOWN. */
  request(type: string, outcome: Outcome, seconds: number): void {
    const t = this.latencyChildren.has(type) ? type : "UNKNOWN";
    this.requestChildren.get(`${t}|${outcome}`)!.inc();
    this.latencyChildren.get(t)!.observe(seconds);
  }

  /** A sign request refused because the slashing database failed; `cause` e.g. DISK_FULL, READ_ONLY. */
  dbFailure(cause: string): void {
    this.dbUnavailable.inc({ cause });
  }

  /** A signature withheld because its audit entry could not be written; `cause` as for the database. */
  auditFailure(cause: string): void {
    this.auditUnavailable.inc({ cause });
  }

  refusal(reason: string): void {
    this.refusals.inc({ reason });
  }

  httpRefusal(listener: string, code: string): void {
    this.httpRefusals.inc({ listener, code });
  }

  authFailure(api: string, throttled: boolean): void {
    this.authFailures.inc({ api });
    if (throttled) this.authThrottled.inc({ api });
  }

  /** One keymanager list, or one key of an import or delete with its per-key status ("ok" for a list). */
  keymanagerOperation(operation: KeymanagerOperation, outcome: string, count = 1): void {
    if (count > 0) this.keymanagerOps.inc({ operation, outcome: outcome.toLowerCase() }, count);
  }

  keyStoreError(operation: KeyStoreOperation, count = 1): void {
    if (count > 0) this.keyStoreErrors.inc({ operation }, count);
  }

  connectionShed(listener: string, reason: string): void {
    this.connectionsShed.inc({ listener, reason });
  }

  requestShed(reason: "expected_wait" | "queue_full" | "client_gone"): void {
    this.requestsShed.inc({ reason });
  }

  commit(stats: BatchStats): void {
    this.commitSize.observe(stats.size);
    this.commitDuration.observe(stats.durationMs / 1000);
  }

  /**
   * As worker `worker` of a `--workers N` signer: every series gets a `worker` label (summing per-worker gauges such
   * as keys loaded would mislead; Prometheus sums what should be summed), and /metrics answers the whole group, as
   * the primary merges it from every worker's registry (signer/cluster/supervisor.ts).
   */
  joinCluster(worker: number, groupText: () => Promise<string>): void {
    this.registry.setDefaultLabels({ worker: String(worker) });
    this.groupText = groupText;
  }

  private groupText: (() => Promise<string>) | undefined;

  async text(): Promise<{ contentType: string; body: string }> {
    if (this.groupText) return { contentType: client.Registry.PROMETHEUS_CONTENT_TYPE, body: await this.groupText() };
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
