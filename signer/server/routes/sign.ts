/**
 * The Web3Signer-compatible eth2 API: POST /api/v1/eth2/sign/{identifier} and GET /api/v1/eth2/publicKeys.
 * The body is validated by the signing core's precompiled validator (one compile per process, same ajv
 * options as fastify), not by a per-route fastify schema.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { replyFormat } from "../accept.js";
import type { ClientState } from "../auth.js";
import type { SignerContext } from "../context.js";
import { errorReply, HttpError } from "../errors.js";

export const SIGN_ROUTE = "/api/v1/eth2/sign/:identifier";

export function registerSignRoutes(app: FastifyInstance, ctx: SignerContext, listenerClient: ClientState | undefined): void {
  const { service, clients, metrics, logger } = ctx;

  app.get("/api/v1/eth2/publicKeys", async (request, reply) => {
    let client: ClientState;
    try {
      client = clients.identify(request.headers.authorization, request.raw.socket, listenerClient);
    } catch (err) {
      return sendError(reply, err);
    }
    const keys: string[] = [];
    for (const k of service.keys) if (client.mayUse(k)) keys.push(k);
    return reply.send(keys);
  });

  app.post<{ Params: { identifier: string } }>(SIGN_ROUTE, (request, reply) => handleSign(request, reply));

  function sendError(reply: FastifyReply, err: unknown): FastifyReply {
    const r = errorReply(err);
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
      const format = replyFormat(request.headers.accept);
      if (format === "none") throw new HttpError(406, "NOT_ACCEPTABLE", "Accept must allow application/json or text/plain");
      const pubkey = service.admit(client, request.params.identifier);
      const socket = request.raw.socket;
      const signed = await service.sign(client, pubkey, body, () => socket.destroyed);
      // Release and send in one synchronous step (see SigningService.release).
      const signature = service.release(client, signed);
      metrics.request(type, "signed", (performance.now() - started) / 1000);
      if (format === "text") return reply.header("content-type", "text/plain; charset=utf-8").send(signature);
      return reply.header("content-type", "application/json; charset=utf-8").send(`{"signature":"${signature}"}`);
    } catch (err) {
      const r = errorReply(err);
      if (client && (r.status === 412 || r.status === 403)) client.refused++;
      if (r.status === 412) metrics.refusal(String(r.body.reason ?? r.body.code));
      metrics.request(type, r.outcome, (performance.now() - started) / 1000);
      const fields = { reqId: request.id, client: client?.id, pubkey: request.params.identifier, type, status: r.status, code: r.body.code };
      if (!r.expected) logger.error({ ...fields, err: err instanceof Error ? err.message : String(err) }, "signing request failed");
      else if (r.status === 412 || r.status === 403 || r.status === 401) logger.warn(fields, String(r.body.message));
      else logger.debug(fields, String(r.body.message));
      if (r.retryAfter !== undefined) void reply.header("retry-after", String(r.retryAfter));
      return reply.code(r.status).send(r.body);
    }
  }
}
