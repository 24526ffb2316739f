/**
 * The fastify instances of one signer: the main listener (eth2 API, admin, keymanager, metrics unless it has
 * its own address), one per client with a dedicated listener (eth2 API only, requests belong to that client),
 * and an optional metrics listener. Request logging is off on the hot path: each refusal or failure is logged
 * once with its request id (by our pino logger; fastify's own is off).
 */
import fs from "node:fs";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { HttpGuard, installHttpGuard, RefusalLogThrottle } from "../../common/index.js";
import type { ClientState } from "./auth.js";
import type { ListenAddress, TlsSettings } from "./config.js";
import type { SignerContext } from "./context.js";
import { guardConnections } from "./connection-guard.js";
import { errorReply, notFoundReply } from "./errors.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerHealthRoutes, registerMetricsRoute, type HealthDeps } from "./routes/health.js";
import { registerKeymanagerRoutes } from "./routes/keymanager.js";
import { registerReloadRoutes } from "./routes/reload.js";
import { registerSignRoutes, SIGN_ROUTE } from "./routes/sign.js";

export type ListenerRole = { kind: "main" } | { kind: "client"; client: ClientState } | { kind: "metrics" };

let requestCounter = 0;
/** One per process: a hostile page may hit every listener at once, and the log must stay readable. */
const guardLogThrottle = new RefusalLogThrottle();

/** The address a listener is configured on. */
export function listenAddressOf(ctx: SignerContext, role: ListenerRole): ListenAddress {
  if (role.kind === "client") return ctx.config.clients!.find((c) => c.id === role.client.id)!.listen!;
  if (role.kind === "metrics") return ctx.config.metrics.listen!;
  return ctx.config.listen;
}

/** The TLS settings of a listener: the main one's `tls`, a dedicated client listener's `listen.tls`. */
export function tlsOf(ctx: SignerContext, role: ListenerRole): TlsSettings | undefined {
  if (role.kind === "main") return ctx.config.tls;
  if (role.kind === "client") return ctx.config.clients?.find((c) => c.id === role.client.id)?.listenTls;
  return undefined;
}

export function buildApp(ctx: SignerContext, role: ListenerRole): FastifyInstance {
  const prefix = role.kind === "client" ? `${role.client.id}-` : role.kind === "metrics" ? "m-" : "";
  const limits = ctx.config.limits;
  // Slowloris: every phase of a connection has a deadline (Node checks the header and request ones every
  // connectionsCheckingInterval, 30 s by default: far too coarse for these), and connection-guard.ts bounds how many
  // connections a listener holds meanwhile.
  const timeouts = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
  const options: FastifyServerOptions & { https?: object; http?: object } = {
    // No fastify logger: it would build a child logger per request. Our own lines carry the request id.
    logger: false,
    requestIdHeader: false, // our ids, never the client's
    genReqId: () => `${prefix}${(++requestCounter).toString(36)}`,
    bodyLimit: ctx.config.limits.bodyLimitBytes,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs, // no traffic at all for this long: closed
    requestTimeout: limits.requestTimeoutMs, // fastify sets it on the server after creating it
    http: timeouts,
    return503OnClosing: true,
  };
  const tls = tlsOf(ctx, role);
  if (tls) {
    options.https = {
      ...timeouts,
      handshakeTimeout: limits.headersTimeoutMs,
      cert: fs.readFileSync(tls.cert),
      key: fs.readFileSync(tls.key),
      ...(tls.ca ? { ca: fs.readFileSync(tls.ca) } : {}),
      requestCert: tls.requestClientCert,
      // Certificates identify clients by pinned fingerprint (clients[].tlsClientCertSha256); a client using a
      // bearer token instead still connects.
      rejectUnauthorized: false,
    };
  }
  const app = Fastify(options) as unknown as FastifyInstance;
  guardConnections(app, limits.maxConnections, (reason) => ctx.metrics.connectionShed(role.kind, reason));

  // First, before any route: a request from a web page is refused before routing and body parsing.
  const guard = new HttpGuard(ctx.config.http, listenAddressOf(ctx, role).host, tls !== undefined);
  installHttpGuard(app, guard, (refusal, request) => {
    ctx.metrics.httpRefusal(role.kind, refusal.code);
    const log = guardLogThrottle.note(refusal.code);
    if (log) {
      ctx.logger.warn(
        { reqId: request.id, listener: role.kind === "client" ? `client:${role.client.id}` : role.kind, code: refusal.code, notLoggedSince: log.suppressed },
        refusal.message,
      );
    }
  });

  app.setErrorHandler((err, request, reply) => {
    const r = errorReply(err);
    if (request.routeOptions.url === SIGN_ROUTE) {
      const type = typeof (request.body as { type?: unknown } | undefined)?.type === "string" ? (request.body as { type: string }).type : "UNKNOWN";
      ctx.metrics.request(type, r.outcome, 0);
    }
    if (!r.expected) ctx.logger.error({ reqId: request.id, err: err instanceof Error ? err.message : String(err) }, "request failed");
    else ctx.logger.debug({ reqId: request.id, status: r.status, code: r.body.code }, String(r.body.message));
    if (r.retryAfter !== undefined) void reply.header("retry-after", String(r.retryAfter));
    return reply.code(r.status).send(r.body);
  });

  app.setNotFoundHandler((request, reply) => reply.code(404).send(notFoundReply(request.method, request.url)));

  // Each route gets only what it uses.
  const { config, logger, metrics, authFailures } = ctx;
  if (role.kind === "metrics") {
    registerMetricsRoute(app, { metrics });
    return app;
  }
  registerHealthRoutes(app, healthDepsOf(ctx));
  registerSignRoutes(app, { service: ctx.service, clients: ctx.clients, metrics, logger, authFailures }, role.kind === "client" ? role.client : undefined);
  if (role.kind === "main") {
    if (config.metrics.enabled && config.metrics.listen === undefined) registerMetricsRoute(app, { metrics });
    registerAdminRoutes(app, {
      ...(ctx.adminToken ? { adminToken: ctx.adminToken } : {}),
      fencing: ctx.fencing,
      clients: ctx.clients,
      audit: ctx.audit,
      slashing: ctx.slashing,
      authFailures,
      logger,
      ...(ctx.groupClientViews ? { groupClientViews: ctx.groupClientViews } : {}),
    });
    registerReloadRoutes(app, ctx.reload);
    registerKeymanagerRoutes(app, {
      keyManager: ctx.keyManager,
      token: config.keymanager.enabled ? ctx.keymanagerToken : undefined,
      authFailures,
      logger,
      metrics: ctx.metrics,
    });
  }
  return app;
}

/** What GET /healthcheck (and the metrics' health gauges) probe. */
export function healthDepsOf(ctx: SignerContext): HealthDeps {
  return { slashing: ctx.slashing, pool: ctx.pool, audit: ctx.audit, keyStore: ctx.keyStore, keysLoaded: () => ctx.service.keys.size };
}
