/** GET /upcheck, GET /healthcheck (Web3Signer's shape) and GET /metrics. Unauthenticated: they reveal no keys. */
import type { FastifyInstance } from "fastify";
import type { SignerContext } from "../context.js";

type Status = "UP" | "DOWN";

export function registerHealthRoutes(app: FastifyInstance, ctx: SignerContext): void {
  app.get("/upcheck", async (_request, reply) => reply.header("content-type", "text/plain; charset=utf-8").send("OK"));

  app.get("/healthcheck", async (_request, reply) => {
    const report = await healthReport(ctx);
    return reply.code(report.outcome === "UP" ? 200 : 503).send(report);
  });
}

export interface HealthReport {
  status: Status;
  checks: { id: string; status: Status }[];
  outcome: Status;
}

export async function healthReport(ctx: SignerContext): Promise<HealthReport> {
  const checks = [
    { id: "slashing-protection-db", status: (ctx.db.isHealthy() && ctx.slashingWorker.alive ? "UP" : "DOWN") as Status },
    { id: "key-store", status: (await keyStoreUp(ctx)) ? ("UP" as Status) : ("DOWN" as Status) },
  ];
  const outcome: Status = checks.every((c) => c.status === "UP") ? "UP" : "DOWN";
  return { status: outcome, checks, outcome };
}

export function registerMetricsRoute(app: FastifyInstance, ctx: SignerContext): void {
  app.get("/metrics", async (_request, reply) => {
    const { contentType, body } = await ctx.metrics.text();
    return reply.header("content-type", contentType).send(body);
  });
}

/** The token answers (its key list is readable) and at least one BLS worker holds the keys. */
async function keyStoreUp(ctx: SignerContext): Promise<boolean> {
  if (ctx.pool.aliveThreads === 0) return false;
  try {
    await ctx.keyStore.list();
    return true;
  } catch {
    return false;
  }
}
