/**
 * The standard keymanager API (ethereum/keymanager-APIs) for local keystores: GET/POST/DELETE /eth/v1/keystores.
 * Off unless `keymanager.enabled`; bearer token from `keymanager.tokenFile`. This file is HTTP only: the body's
 * shape, authentication and the replies; the KeyManager (../key-manager.ts) imports and deletes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { throttledBody, type AuthFailureGuard } from "../auth-failures.js";
import { codeOfHttpStatus } from "../errors.js";
import { SlashingProtectionImportError, type KeyManager } from "../key-manager.js";
import type { SignerMetrics } from "../metrics.js";
import { canonicalPubkey, PUBKEY_PARAM } from "../pubkey-param.js";
import { bearerToken, digestToken, sameToken, type TokenDigest } from "../tokens.js";

export interface KeymanagerRouteDeps {
  keyManager: KeyManager;
  /** The keymanager API's token; undefined when the API is off. */
  token: TokenDigest | undefined;
  authFailures: AuthFailureGuard;
  logger: Logger;
  /** vigil_signer_keymanager_operations_total: one per list, one per key of an import or delete (its status). */
  metrics: SignerMetrics;
}

function fail(reply: FastifyReply, status: number, message: string): FastifyReply {
  // The keymanager API's `{ message }`, plus the `code` every other refusal of the signer carries.
  return reply.code(status).send({ code: codeOfHttpStatus(status), message });
}

export function registerKeymanagerRoutes(app: FastifyInstance, deps: KeymanagerRouteDeps): void {
  const { keyManager, token, authFailures, logger, metrics } = deps;
  const countStatuses = (operation: "import" | "delete", statuses: { status: string }[]) => {
    for (const s of statuses) metrics.keymanagerOperation(operation, s.status);
  };
  if (token === undefined) return;

  app.register(async (km) => {
    km.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
      // The right token always passes, first; failed attempts are counted, logged and throttled (auth-failures.ts).
      const presented = bearerToken(request.headers.authorization);
      if (presented !== undefined && sameToken(digestToken(presented), token)) return;
      const reason = presented === undefined ? "missing bearer token" : "wrong bearer token";
      const verdict = authFailures.failed("keymanager", request.socket.remoteAddress, reason);
      if (verdict.throttled)
        return reply.code(429).header("retry-after", String(verdict.retryAfterSeconds)).send(throttledBody("keymanager", verdict.retryAfterSeconds));
      return fail(reply, presented === undefined ? 401 : 403, reason);
    });
    km.setErrorHandler((err, _request, reply) => {
      const status = (err as { statusCode?: number }).statusCode ?? 500;
      if (status >= 500) logger.error({ err: err.message }, "keymanager API error");
      return fail(reply, status, status >= 500 ? "internal error" : err.message);
    });

    km.get("/eth/v1/keystores", async () => {
      const data = keyManager.listWithPaths().map((k) => ({ validating_pubkey: k.pubkey, derivation_path: k.derivationPath, readonly: false }));
      metrics.keymanagerOperation("list", "ok");
      return { data };
    });

    km.post("/eth/v1/keystores", async (request, reply) => {
      const body = request.body as { keystores?: unknown; passwords?: unknown; slashing_protection?: unknown } | undefined;
      const keystores = body?.keystores;
      const passwords = body?.passwords;
      if (!Array.isArray(keystores) || !keystores.every((k) => typeof k === "string")) return fail(reply, 400, "keystores must be an array of JSON strings");
      if (!Array.isArray(passwords) || !passwords.every((p) => typeof p === "string")) return fail(reply, 400, "passwords must be an array of strings");
      if (passwords.length !== keystores.length) return fail(reply, 400, "passwords must have one entry per keystore");
      const slashing = body?.slashing_protection;
      if (slashing !== undefined && typeof slashing !== "string") return fail(reply, 400, "slashing_protection must be a JSON string");
      try {
        const data = await keyManager.importKeys(keystores as string[], passwords as string[], slashing);
        countStatuses("import", data);
        return { data };
      } catch (err) {
        // No key of the request was imported: each counts as an error.
        metrics.keymanagerOperation("import", "error", keystores.length);
        if (err instanceof SlashingProtectionImportError) return fail(reply, 400, err.message);
        throw err;
      }
    });

    km.delete("/eth/v1/keystores", async (request, reply) => {
      const pubkeys = (request.body as { pubkeys?: unknown } | undefined)?.pubkeys;
      if (!Array.isArray(pubkeys) || !pubkeys.every((p) => typeof p === "string" && PUBKEY_PARAM.test(p))) {
        return fail(reply, 400, "pubkeys must be an array of 48-byte public keys in hex (0x optional)");
      }
      try {
        const result = await keyManager.deleteKeys((pubkeys as string[]).map(canonicalPubkey));
        countStatuses("delete", result.data);
        return result;
      } catch (err) {
        metrics.keymanagerOperation("delete", "error", pubkeys.length);
        throw err;
      }
    });
  });
}
