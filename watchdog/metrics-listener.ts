import Fastify from "fastify";
import { HttpGuard, installHttpGuard, isLoopbackAddress, RefusalLogThrottle } from "../common/index.js";
import type { WatchdogContext } from "./context.js";

/** What /healthz reports: when the daemon last observed the stacks, and why it judged the active one as it did. */
export interface DaemonHealth {
  lastObservationAt: number | null;
  reasons: string[];
}

export interface MetricsListener {
  /** e.g. http://127.0.0.1:9464 */
  readonly address: string;
  close(): Promise<void>;
}

/** Serves /metrics and /healthz on config.metrics.host at `port`, behind the same Host/Origin guard as the signer. */
export async function startMetricsListener(ctx: WatchdogContext, port: number, health: () => DaemonHealth): Promise<MetricsListener> {
  const app = Fastify({ logger: false });
  // Before the routes: no web page may read the daemon's state (DNS rebinding, cross-origin requests).
  const { host, hostAllowlist, allowedOrigins } = ctx.config.metrics;
  const guard = new HttpGuard({ hostAllowlist, allowedOrigins }, host);
  if (guard.onlyDefaults && !isLoopbackAddress(host)) {
    ctx.log.warn(
      { host },
      "metrics listener is not on loopback but metrics.hostAllowlist is empty: only loopback Host names and the listen address are accepted",
    );
  }
  const throttle = new RefusalLogThrottle();
  installHttpGuard(app, guard, (refusal) => {
    ctx.metrics.httpRefusals.inc({ code: refusal.code });
    const log = throttle.note(refusal.code);
    if (log) ctx.log.warn({ code: refusal.code, notLoggedSince: log.suppressed }, refusal.message);
  });
  const registry = ctx.metrics.registry;
  app.get("/metrics", async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.get("/healthz", async () => ({ ok: true, ...health() }));
  const address = await app.listen({ host, port });
  return {
    address,
    async close() {
      await app.close();
    },
  };
}
