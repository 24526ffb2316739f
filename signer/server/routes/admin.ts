/** The admin API of signer/docs/admin-api.md (fencing, client views, signatures feed). Bearer admin token. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import {
  ADMIN_ROUTES,
  DECISION_PATTERN,
  FENCE_ACTIONS,
  mergeClientViews,
  SHARING_NONCE_PATTERN,
  SIGNATURES_DEFAULT_LIMIT,
  SIGNATURES_MAX_LIMIT,
  type AdminErrorBody,
  type AdminErrorCode,
  type ClientsResponse,
  type ClientView,
  type FenceRequest,
  type FencingResponse,
  type SignaturesQuery,
  type SignaturesResponse,
  type SlashingDbResponse,
  type StaleGenerationBody,
} from "../../../admin-api/index.js";
import type { AuditLog } from "../audit-log.js";
import type { ClientRegistry, ClientState } from "../auth.js";
import { throttledBody, type AuthFailureGuard } from "../auth-failures.js";
import { SlashingDbUnavailableError, type SlashingProtection } from "../../../slashing-db/index.js";
import { RETRY_AFTER_SECONDS } from "../errors.js";
import type { ClientFencing, FenceResult } from "../fencing/client-fencing.js";
import { bearerToken, digestToken, sameToken, type TokenDigest } from "../tokens.js";

/** What the admin API reads and changes. */
export interface AdminRouteDeps {
  /** The admin API's token; undefined when the API is off. */
  adminToken?: TokenDigest;
  fencing: ClientFencing;
  clients: ClientRegistry;
  audit: AuditLog;
  /** The slashing database, for its identity and the sharing nonce. */
  slashing: Pick<SlashingProtection, "identity" | "writeSharingNonce">;
  authFailures: AuthFailureGuard;
  logger: Logger;
  /**
   * A `--workers N` worker: every worker's views of the clients. Client views are then the merge over the
   * workers (mergeClientViews), as a watchdog merges several instances: one worker sees only its share.
   */
  groupClientViews?: () => Promise<ClientView[][]>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** This process's views of all its clients (one worker's share under `--workers N`). */
export function localClientViews(ctx: Pick<AdminRouteDeps, "fencing" | "clients">): ClientView[] {
  return [...ctx.clients.clients.values()].map((c) => clientView(ctx, c));
}

export function clientView(ctx: Pick<AdminRouteDeps, "fencing">, client: ClientState): ClientView {
  const fence = ctx.fencing.fence(client.id);
  return {
    id: client.id,
    enabled: fence.enabled,
    changedAtGeneration: fence.changedAtGeneration,
    inFlight: client.inFlight,
    lastRequestAt: iso(client.lastRequestAt),
    lastSignedAt: iso(client.lastSignedAt),
    signed: client.signed,
    refused: client.refused,
    lastSigned: [...client.lastSigned.values()].reverse(), // newest first
  };
}

function fail(
  reply: FastifyReply,
  status: number,
  code: AdminErrorCode,
  message: string,
  extra: Partial<Pick<StaleGenerationBody, "field" | "reason" | "currentGeneration">> = {},
): FastifyReply {
  const body: AdminErrorBody = { code, message, ...extra };
  return reply.code(status).send(body);
}

export function registerAdminRoutes(app: FastifyInstance, ctx: AdminRouteDeps): void {
  const token = ctx.adminToken;
  if (token === undefined) return;

  app.register(async (admin) => {
    admin.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
      // The right token always passes, first: fencing must get through a flood of wrong ones (auth-failures.ts).
      const presented = bearerToken(request.headers.authorization);
      if (presented !== undefined && sameToken(digestToken(presented), token)) return;
      const verdict = ctx.authFailures.failed("admin", request.socket.remoteAddress, presented === undefined ? "missing bearer token" : "wrong bearer token");
      if (verdict.throttled)
        return reply.code(429).header("retry-after", String(verdict.retryAfterSeconds)).send(throttledBody("admin", verdict.retryAfterSeconds));
      return fail(reply, 401, "UNAUTHENTICATED", "admin API: missing or wrong bearer token");
    });
    admin.setErrorHandler((err, _request, reply) => {
      const status = (err as { statusCode?: number }).statusCode ?? 500;
      if (status >= 500) ctx.logger.error({ err: err.message }, "admin API error");
      return fail(reply, status, status === 400 ? "INVALID_REQUEST" : "INTERNAL", status >= 500 ? "internal error" : err.message);
    });

    admin.get(ADMIN_ROUTES.fencing, async (): Promise<FencingResponse> => ({ generation: ctx.fencing.generation }));

    /** Every client's view: this process's own, or merged over the workers of a `--workers N` signer. */
    const views = async (): Promise<ClientView[]> => (ctx.groupClientViews ? mergeClientViews(await ctx.groupClientViews()) : localClientViews(ctx));
    const viewsUnavailable = (reply: FastifyReply, err: unknown) => {
      ctx.logger.error({ err: (err as Error).message }, "admin API: the worker group's client views are unavailable");
      void reply.header("retry-after", String(RETRY_AFTER_SECONDS));
      return fail(reply, 503, "STATE_UNAVAILABLE", "the client views of every worker could not be read: retry");
    };

    admin.get(ADMIN_ROUTES.clients, async (_request, reply): Promise<ClientsResponse | FastifyReply> => {
      try {
        return { generation: ctx.fencing.generation, clients: await views() };
      } catch (err) {
        return viewsUnavailable(reply, err);
      }
    });

    admin.get<{ Params: { id: string } }>(ADMIN_ROUTES.client, async (request, reply): Promise<ClientView | FastifyReply> => {
      const client = ctx.clients.get(request.params.id);
      if (!client) return fail(reply, 404, "UNKNOWN_CLIENT", `no client ${request.params.id}`);
      if (!ctx.groupClientViews) return clientView(ctx, client);
      try {
        return (await views()).find((v) => v.id === client.id) ?? clientView(ctx, client);
      } catch (err) {
        return viewsUnavailable(reply, err);
      }
    });

    for (const action of FENCE_ACTIONS) {
      admin.post<{ Params: { id: string }; Body: unknown }>(ADMIN_ROUTES[action], async (request, reply): Promise<ClientView | FastifyReply> => {
        // Checked field by field: the body is whatever the caller sent, FenceRequest only once it passes.
        const body = request.body as { [K in keyof FenceRequest]?: unknown } | undefined;
        const generation = body?.generation;
        if (typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 0) {
          return fail(reply, 400, "INVALID_REQUEST", "generation must be a non-negative integer", { field: "generation" });
        }
        const decision = body?.decision;
        if (decision !== undefined && (typeof decision !== "string" || !DECISION_PATTERN.test(decision))) {
          return fail(reply, 400, "INVALID_REQUEST", "decision must be 1 to 128 letters, digits or -_.:", { field: "decision" });
        }
        const client = ctx.clients.get(request.params.id);
        if (!client) return fail(reply, 404, "UNKNOWN_CLIENT", `no client ${request.params.id}`);
        let result: FenceResult;
        try {
          result = await ctx.fencing.apply(client.id, action === "enable", generation, decision);
        } catch (err) {
          if (!(err instanceof SlashingDbUnavailableError)) throw err;
          // Not acknowledged: the caller retries (the same generation and decision again is an idempotent retry).
          ctx.logger.error({ reqId: request.id, client: client.id, err: err.message }, `client ${action} failed: the fencing state is unavailable`);
          void reply.header("retry-after", String(RETRY_AFTER_SECONDS));
          return fail(
            reply,
            503,
            "STATE_UNAVAILABLE",
            `the client fencing state could not be changed (${err.failure}); nothing changed or the change is not confirmed: retry`,
          );
        }
        if (!result.ok) {
          const message =
            result.reason === "STALE"
              ? `generation ${generation} is older than the signer's ${result.currentGeneration}`
              : `generation ${generation} is already held by another decision`;
          return fail(reply, 409, "STALE_GENERATION", message, { currentGeneration: result.currentGeneration, reason: result.reason });
        }
        ctx.logger.warn({ reqId: request.id, client: client.id, generation }, `client ${action}d through the admin API`);
        return clientView(ctx, client);
      });
    }

    // Read from the database at every call (never a cached copy): the watchdog's live proof compares what two
    // signers read a moment after one of them wrote a nonce (signer/docs/admin-api.md).
    const identity = async (reply: FastifyReply, write?: string): Promise<SlashingDbResponse | FastifyReply> => {
      try {
        if (write !== undefined) await ctx.slashing.writeSharingNonce(write);
        const id = await ctx.slashing.identity();
        return { backend: id.backend, historyId: id.historyId, sharingNonce: id.sharingNonce, fencingShared: id.backend === "postgres" };
      } catch (err) {
        ctx.logger.error(
          { err: (err as Error).message },
          write === undefined ? "reading the slashing database's identity failed" : "writing the sharing nonce failed",
        );
        void reply.header("retry-after", String(RETRY_AFTER_SECONDS));
        return fail(reply, 503, "SLASHING_DB_UNAVAILABLE", "the slashing database could not be read or written: retry");
      }
    };

    admin.get(ADMIN_ROUTES.slashingDb, async (_request, reply) => identity(reply));

    admin.post<{ Body: unknown }>(ADMIN_ROUTES.sharingNonce, async (request, reply) => {
      const nonce = (request.body as { nonce?: unknown } | undefined)?.nonce;
      if (typeof nonce !== "string" || !SHARING_NONCE_PATTERN.test(nonce)) {
        return fail(reply, 400, "INVALID_REQUEST", "nonce must be 32 to 64 lower-case hex digits", { field: "nonce" });
      }
      return identity(reply, nonce);
    });

    admin.get<{ Querystring: SignaturesQuery }>(ADMIN_ROUTES.signatures, async (request, reply): Promise<SignaturesResponse | FastifyReply> => {
      const after = request.query.after === undefined ? 0 : Number(request.query.after);
      const limit = request.query.limit === undefined ? SIGNATURES_DEFAULT_LIMIT : Number(request.query.limit);
      if (!Number.isSafeInteger(after) || after < 0) return fail(reply, 400, "INVALID_REQUEST", "after must be a non-negative integer", { field: "after" });
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > SIGNATURES_MAX_LIMIT) {
        return fail(reply, 400, "INVALID_REQUEST", `limit must be an integer from 1 to ${SIGNATURES_MAX_LIMIT}`, { field: "limit" });
      }
      return ctx.audit.list(after, limit);
    });
  });
}
