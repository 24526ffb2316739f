/**
 * The Web3Signer-compatible eth2 API: POST /api/v1/eth2/sign/{identifier}, GET /api/v1/eth2/publicKeys and
 * GET /api/v1/eth2/highWatermark.
 * The body is validated by the signing core's precompiled validator (one compile per process, same ajv
 * options as fastify), not by a per-route fastify schema.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { replyFormat } from "../accept.js";
import type { Logger } from "pino";
import type { ClientRegistry, ClientState } from "../auth.js";
import { throttledBody, type AuthFailureGuard } from "../auth-failures.js";
import { errorReply, HttpError, type ErrorReply } from "../errors.js";
import type { SignerMetrics } from "../metrics.js";
import type { SigningService } from "../signing-service.js";

export const SIGN_ROUTE = "/api/v1/eth2/sign/:identifier";

export interface SignRouteDeps {
  service: SigningService;
  clients: ClientRegistry;
  metrics: SignerMetrics;
  logger: Logger;
  authFailures: AuthFailureGuard;
}

export function registerSignRoutes(app: FastifyInstance, deps: SignRouteDeps, listenerClient: ClientState | undefined): void {
  const { service, clients, metrics, logger, authFailures } = deps;

  app.get("/api/v1/eth2/publicKeys", async (request, reply) => {
    let client: ClientState;
    try {
      client = clients.identify(request.headers.authorization, request.raw.socket, listenerClient);
    } catch (err) {
      return sendError(reply, err, request);
    }
    const keys: string[] = [];
    for (const k of service.keys) if (client.mayUse(k)) keys.push(k);
    return reply.send(keys);
  });

  // Web3Signer's shape: {"epoch","slot"} as decimal strings, {} when none is set (a bound not set is left out).
  // Read from the database on every call, so a watermark the CLI just set shows at once.
  app.get("/api/v1/eth2/highWatermark", async (request, reply) => {
    try {
      clients.identify(request.headers.authorization, request.raw.socket, listenerClient);
      const mark = await service.highWatermark();
      const body: { epoch?: string; slot?: string } = {};
      if (mark?.epoch != null) body.epoch = mark.epoch.toString();
      if (mark?.slot != null) body.slot = mark.slot.toString();
      return reply.send(body);
    } catch (err) {
      return sendError(reply, err, request);
    }
  });

  app.post<{ Params: { identifier: string } }>(SIGN_ROUTE, (request, reply) => handleSign(request, reply));

  /**
   * A 401 is a failed authentication: counted and logged (rate-limited) by authFailures, and answered 429
   * once its address (or everyone) failed too often. A client's right token is checked before and always passes.
   */
  function authChecked(r: ErrorReply, request: FastifyRequest): ErrorReply {
    // A 403 (key outside the client's list, type not allowed, client disabled): counted and logged, rate-limited.
    if (r.status === 403) authFailures.forbidden("eth2", request.socket.remoteAddress, String(r.body.message));
    if (r.status !== 401) return r;
    const verdict = authFailures.failed("eth2", request.socket.remoteAddress, String(r.body.message));
    if (!verdict.throttled) return r;
    return {
      status: 429,
      outcome: "not_allowed",
      body: throttledBody("eth2", verdict.retryAfterSeconds),
      retryAfter: verdict.retryAfterSeconds,
      expected: true,
    };
  }

  function sendError(reply: FastifyReply, err: unknown, request: FastifyRequest): FastifyReply {
    const r = authChecked(errorReply(err), request);
    if (r.retryAfter !== undefined) void reply.header("retry-after", String(r.retryAfter));
    return reply.code(r.status).send(r.body);
  }

  async function handleSign(request: FastifyRequest<{ Params: { identifier: string } }>, reply: FastifyReply): Promise<FastifyReply> {
    const started = performance.now();
    const body = request.body as { type?: unknown } | undefined;
    const type = typeof body?.type === "string" ? body.type : "UNKNOWN";
    let client: ClientState | undefined;
    try {
      client = clients.identify(request.headers.authorization, request.raw.socket, listenerClient);
      client.lastRequestAt = Date.now();
      client.checkType(type); // before anything else: a refused type is never validated, recorded or signed
      const format = replyFormat(request.headers.accept);
      if (format === "none") throw new HttpError(406, "NOT_ACCEPTABLE", "Accept must allow application/json or text/plain");
      const pubkey = service.admit(client, request.params.identifier);
      const socket = request.raw.socket;
      const signed = await service.sign(client, pubkey, body, () => socket.destroyed);
      // The last check and the send happen in one synchronous step (see SigningService.release).
      await service.release(client, signed, (signature) => {
        metrics.request(type, "signed", (performance.now() - started) / 1000);
        if (format === "text") void reply.header("content-type", "text/plain; charset=utf-8").send(signature);
        else void reply.header("content-type", "application/json; charset=utf-8").send(`{"signature":"${signature}"}`);
      });
      return reply;
    } catch (err) {
      const r = authChecked(errorReply(err), request);
      if (client && (r.status === 412 || r.status === 403)) client.refused++;
      if (r.status === 412) metrics.refusal(String(r.body.reason ?? r.body.code));
      if (r.outcome === "db_unavailable") metrics.dbFailure(String(r.body.cause));
      if (r.outcome === "audit_unavailable") metrics.auditFailure(String(r.body.cause));
      metrics.request(type, r.outcome, (performance.now() - started) / 1000);
      const fields = { reqId: request.id, client: client?.id, pubkey: request.params.identifier, type, status: r.status, code: r.body.code };
      if (!r.expected) logger.error({ ...fields, err: err instanceof Error ? err.message : String(err) }, "signing request failed");
      else if (r.status === 412) logger.warn(fields, String(r.body.message));
      else logger.debug(fields, String(r.body.message));
      if (r.retryAfter !== undefined) void reply.header("retry-after", String(r.retryAfter));
      return reply.code(r.status).send(r.body);
    }
  }
}
