/** GET /upcheck, GET /healthcheck (Web3Signer's shape) and GET /metrics. Unauthenticated: they reveal no keys. */
import type { FastifyInstance } from "fastify";
import type { SlashingProtection } from "../../../slashing-db/index.js";
import type { KeyStore } from "../../keystore/index.js";
import type { BlsPool } from "../../signing/index.js";
import type { AuditLog } from "../audit-log.js";
import type { SignerMetrics } from "../metrics.js";

type Status = "UP" | "DOWN";

/** What the health checks probe. */
export interface HealthDeps {
  slashing: SlashingProtection;
  pool: BlsPool;
  audit: AuditLog;
  keyStore: KeyStore;
  /** How many keys this signer serves now. */
  keysLoaded: () => number;
}

export function registerHealthRoutes(app: FastifyInstance, ctx: HealthDeps): void {
  app.get("/upcheck", async (_request, reply) => reply.header("content-type", "text/plain; charset=utf-8").send("OK"));

  app.get("/healthcheck", async (_request, reply) => {
    const report = await healthReport(ctx);
    return reply.code(report.outcome === "UP" ? 200 : 503).send(report);
  });
}

/**
 * Web3Signer's check ids, so probes written for it work unchanged: `default-check` (the server answers),
 * `slashing-protection-db-health-check`, `keys-check` (with one sub-check carrying `data.keys-loaded` and
 * `data.error-count`, as Web3Signer's key loaders report). `audit-log` and `bls-workers` are Vigil's own.
 */
export const CHECK_IDS = {
  default: "default-check",
  slashingDb: "slashing-protection-db-health-check",
  keys: "keys-check",
  keyStore: "keys-check/pkcs11-token-loading",
  audit: "audit-log",
  bls: "bls-workers",
} as const;
export type CheckId = (typeof CHECK_IDS)[keyof typeof CHECK_IDS];

/** One check; `cause` (a stable UPPER_SNAKE label) says why it is DOWN. No paths or messages: this is public. */
export interface HealthCheck {
  id: CheckId;
  status: Status;
  cause?: string;
  data?: { "keys-loaded": number; "error-count": number };
  checks?: HealthCheck[];
}

export interface HealthReport {
  status: Status;
  checks: HealthCheck[];
  outcome: Status;
}

/**
 * The outcome is DOWN (503) exactly when a slashable message (block, attestation) could not be signed now:
 * - slashing-protection-db-health-check: a real write probe through the signing connection's group commit (at most one a
 *   second; a commit's own result counts as one), the worker thread alive, the file still the one opened, and
 *   the main connection answering. Causes: DISK_FULL, READ_ONLY, FILE_GONE, IO_ERROR, LOCKED, WORKER_STOPPED,
 *   CLOSED, UNKNOWN, MAIN_CONNECTION_FAILED. On PostgreSQL: a transaction committed with synchronous_commit=on
 *   (within 2 s), DOWN for 5 s after a failed batch; causes UNREACHABLE, AUTH_FAILED, DISK_FULL, READ_ONLY, ….
 * - audit-log: the last durable write of the audit feed (a block's or attestation's entry, fdatasync'd before its
 *   signature is sent; a sequence-number reservation) succeeded. While it failed, those signatures are withheld.
 *   No probe of its own: it is UP again after the next durable write that succeeds. Causes as for the database
 *   (same classifier): DISK_FULL, READ_ONLY, FILE_GONE, IO_ERROR, UNKNOWN.
 * - bls-workers: at least one BLS worker thread holds the keys. Cause: NO_WORKER_ALIVE.
 * - keys-check (its sub-check keys-check/pkcs11-token-loading, with data.keys-loaded): the token is present and the session logged in (two PKCS#11 calls, no enumeration). Keys already
 *   loaded keep signing without it, so a DOWN key store does not make the outcome DOWN: it means imports,
 *   deletes and the next start will fail. Causes: TOKEN_GONE, SESSION_INVALID, NOT_LOGGED_IN.
 */
export async function healthReport(ctx: HealthDeps): Promise<HealthReport> {
  const [db, keyStore] = await Promise.all([slashingDbCheck(ctx), keyStoreCheck(ctx)]);
  const bls: HealthCheck = ctx.pool.aliveThreads > 0 ? { id: CHECK_IDS.bls, status: "UP" } : { id: CHECK_IDS.bls, status: "DOWN", cause: "NO_WORKER_ALIVE" };
  const auditHealth = ctx.audit.health();
  const audit: HealthCheck = auditHealth.up
    ? { id: CHECK_IDS.audit, status: "UP" }
    : { id: CHECK_IDS.audit, status: "DOWN", cause: auditHealth.cause ?? "UNKNOWN" };
  const keyStoreLoading: HealthCheck = { ...keyStore, data: { "keys-loaded": ctx.keysLoaded(), "error-count": keyStore.status === "UP" ? 0 : 1 } };
  const keys: HealthCheck = { id: CHECK_IDS.keys, status: keyStore.status, ...(keyStore.cause ? { cause: keyStore.cause } : {}), checks: [keyStoreLoading] };
  const checks: HealthCheck[] = [{ id: CHECK_IDS.default, status: "UP" }, db, audit, keys, bls];
  const outcome: Status = db.status === "UP" && audit.status === "UP" && bls.status === "UP" ? "UP" : "DOWN";
  return { status: outcome, checks, outcome };
}

export function registerMetricsRoute(app: FastifyInstance, ctx: { metrics: SignerMetrics }): void {
  app.get("/metrics", async (_request, reply) => {
    const { contentType, body } = await ctx.metrics.text();
    return reply.header("content-type", contentType).send(body);
  });
}

async function slashingDbCheck(ctx: HealthDeps): Promise<HealthCheck> {
  const health = await ctx.slashing.health();
  if (!health.up) return { id: CHECK_IDS.slashingDb, status: "DOWN", cause: health.cause ?? "UNKNOWN" };
  return { id: CHECK_IDS.slashingDb, status: "UP" };
}

async function keyStoreCheck(ctx: HealthDeps): Promise<HealthCheck & { id: typeof CHECK_IDS.keyStore }> {
  if (ctx.keyStore.health) {
    const h = await ctx.keyStore.health().catch(() => ({ up: false, cause: "SESSION_INVALID" as const }));
    return h.up ? { id: CHECK_IDS.keyStore, status: "UP" } : { id: CHECK_IDS.keyStore, status: "DOWN", cause: h.cause ?? "SESSION_INVALID" };
  }
  // A store without a cheap probe: its key list must be readable.
  try {
    await ctx.keyStore.list();
    return { id: CHECK_IDS.keyStore, status: "UP" };
  } catch {
    return { id: CHECK_IDS.keyStore, status: "DOWN", cause: "UNREADABLE" };
  }
}
