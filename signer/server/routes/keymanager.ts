/**
 * The standard keymanager API (ethereum/keymanager-APIs) for local keystores: GET/POST/DELETE /eth/v1/keystores,
 * with EIP-3076 slashing protection imported before the keys and exported with the deletions. Off unless
 * `keymanager.enabled`; bearer token from `keymanager.tokenFile`. Keys go to the HSM key store first (durable),
 * then into the BLS pool; deletions leave the pool (after in-flight requests finish) before the token.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { normalizeHex } from "../../../config/index.js";
import { decryptKeystoreContents, defaultImportWorkers, type SecretKeyInput } from "../../keystore/index.js";
import type { Interchange } from "../../../slashing-db/index.js";
import type { SignerContext } from "../context.js";
import { throttledBody } from "../auth-failures.js";
import { bearerToken, digestToken, sameToken } from "../tokens.js";

type ImportStatus = { status: "imported" | "duplicate" | "error"; message?: string };
type DeleteStatus = { status: "deleted" | "not_active" | "not_found" | "error"; message?: string };

function fail(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send({ message });
}

export function registerKeymanagerRoutes(app: FastifyInstance, ctx: SignerContext): void {
  const token = ctx.keymanagerToken;
  if (!ctx.config.keymanager.enabled || token === undefined) return;

  app.register(async (km) => {
    km.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
      // The right token always passes, first; failed attempts are counted, logged and throttled (auth-failures.ts).
      const presented = bearerToken(request.headers.authorization);
      if (presented !== undefined && sameToken(digestToken(presented), token)) return;
      const reason = presented === undefined ? "missing bearer token" : "wrong bearer token";
      const verdict = ctx.authFailures.failed("keymanager", request.socket.remoteAddress, reason);
      if (verdict.throttled) return reply.code(429).header("retry-after", String(verdict.retryAfterSeconds)).send(throttledBody("keymanager", verdict.retryAfterSeconds));
      return fail(reply, presented === undefined ? 401 : 403, reason);
    });
    km.setErrorHandler((err, _request, reply) => {
      const status = (err as { statusCode?: number }).statusCode ?? 500;
      if (status >= 500) ctx.logger.error({ err: err.message }, "keymanager API error");
      return fail(reply, status, status >= 500 ? "internal error" : err.message);
    });

    km.get("/eth/v1/keystores", async () => ({
      data: [...ctx.service.keys].sort().map((pubkey) => ({ validating_pubkey: pubkey, derivation_path: "", readonly: false })),
    }));

    km.post("/eth/v1/keystores", async (request, reply) => {
      const body = request.body as { keystores?: unknown; passwords?: unknown; slashing_protection?: unknown } | undefined;
      const keystores = body?.keystores;
      const passwords = body?.passwords;
      if (!Array.isArray(keystores) || !keystores.every((k) => typeof k === "string")) return fail(reply, 400, "keystores must be an array of JSON strings");
      if (!Array.isArray(passwords) || !passwords.every((p) => typeof p === "string")) return fail(reply, 400, "passwords must be an array of strings");
      if (passwords.length !== keystores.length) return fail(reply, 400, "passwords must have one entry per keystore");
      const slashing = body?.slashing_protection;
      if (slashing !== undefined && typeof slashing !== "string") return fail(reply, 400, "slashing_protection must be a JSON string");
      return serialised(ctx, async () => {
        if (slashing !== undefined) {
          try {
            // Before any key can sign: its history must already be in the database.
            const s = await ctx.slashing.importInterchange(slashing); // an import into an unpinned database pins it
            ctx.logger.info({ validators: s.validators }, "keymanager: imported slashing protection");
          } catch (err) {
            return fail(reply, 400, `slashing_protection: ${(err as Error).message}`);
          }
        }
        const data = await importAll(ctx, keystores as string[], passwords as string[]);
        return { data };
      });
    });

    km.delete("/eth/v1/keystores", async (request, reply) => {
      const pubkeys = (request.body as { pubkeys?: unknown } | undefined)?.pubkeys;
      if (!Array.isArray(pubkeys) || !pubkeys.every((p) => typeof p === "string" && /^0x[0-9a-fA-F]{96}$/.test(p))) {
        return fail(reply, 400, "pubkeys must be an array of 0x-prefixed 48-byte public keys");
      }
      return serialised(ctx, () => deleteAll(ctx, (pubkeys as string[]).map(normalizeHex)));
    });
  });
}

/** Key changes run one at a time: each touches the pool, the token and the database together. */
function serialised<T>(ctx: SignerContext, work: () => Promise<T>): Promise<T> {
  const run = ctx.keyChanges.tail.then(work, work);
  ctx.keyChanges.tail = run.catch(() => undefined);
  return run;
}

async function importAll(ctx: SignerContext, keystores: string[], passwords: string[]): Promise<ImportStatus[]> {
  const statuses: ImportStatus[] = new Array(keystores.length);
  const concurrency = Math.max(1, Math.min(defaultImportWorkers(), keystores.length));
  let next = 0;
  const decrypted: (SecretKeyInput | undefined)[] = new Array(keystores.length);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keystores.length) {
        const i = next++;
        try {
          decrypted[i] = await decryptOne(keystores[i]!, passwords[i]!);
        } catch (err) {
          statuses[i] = { status: "error", message: (err as Error).message.replace(/^.*?: /, "") };
        }
      }
    }),
  );
  // Storing and loading run in request order so duplicates inside one request are reported as such.
  for (let i = 0; i < keystores.length; i++) {
    const key = decrypted[i];
    if (!key) continue;
    const pubkey = normalizeHex(key.pubkey);
    if (ctx.service.keys.has(pubkey)) {
      key.secretKey.fill(0);
      statuses[i] = { status: "duplicate" };
      continue;
    }
    const forPool = Uint8Array.from(key.secretKey);
    try {
      await ctx.keyStore.importKeys([key]); // zeroes key.secretKey
      await ctx.pool.addKeys([forPool]); // zeroes forPool
      ctx.service.addKeys([pubkey]);
      statuses[i] = { status: "imported" };
      ctx.logger.info({ pubkey }, "keymanager: key imported");
    } catch (err) {
      statuses[i] = { status: "error", message: (err as Error).message };
    } finally {
      key.secretKey.fill(0);
      forPool.fill(0);
    }
  }
  return statuses;
}

/** Decrypts one EIP-2335 keystore in a worker thread (scrypt off the event loop), entirely in memory. */
async function decryptOne(json: string, password: string): Promise<SecretKeyInput> {
  const [key] = await decryptKeystoreContents([{ label: "keystore", json, password }], { workers: 1, progressStream: null });
  if (!key) throw new Error("keystore could not be decrypted");
  return key;
}

async function deleteAll(ctx: SignerContext, pubkeys: string[]): Promise<{ data: DeleteStatus[]; slashing_protection: string }> {
  const statuses: DeleteStatus[] = [];
  const active = pubkeys.filter((p) => ctx.service.keys.has(p));
  // No new request is admitted for these keys from here; those already admitted finish (and are recorded) first.
  await ctx.service.retireKeys(active);
  await ctx.pool.removeKeys(active);
  const storeFailures = new Map<string, string>();
  const onToken = new Set((await ctx.keyStore.list()).map((k) => k.pubkey));
  const toDelete = [...new Set(active)].filter((p) => onToken.has(p));
  if (toDelete.length > 0) {
    try {
      await ctx.keyStore.delete(toDelete);
    } catch (err) {
      for (const p of toDelete) storeFailures.set(p, (err as Error).message);
    }
  }
  const interchange = await exportHistory(ctx, pubkeys);
  const withHistory = new Set(
    interchange.data.filter((r) => r.signed_blocks.length + r.signed_attestations.length > 0).map((r) => normalizeHex(r.pubkey)),
  );
  for (const p of pubkeys) {
    if (active.includes(p)) {
      const failure = storeFailures.get(p);
      statuses.push(failure ? { status: "error", message: `removed from the signer but not from the key store: ${failure}` } : { status: "deleted" });
    } else if (withHistory.has(p)) statuses.push({ status: "not_active" });
    else statuses.push({ status: "not_found" });
  }
  for (const p of active) if (!storeFailures.has(p)) ctx.logger.info({ pubkey: p }, "keymanager: key deleted");
  // The history of every key that was (or had been) active here: what the next signer must import.
  const exported = { ...interchange, data: interchange.data.filter((r) => active.includes(normalizeHex(r.pubkey)) || withHistory.has(normalizeHex(r.pubkey))) };
  return { data: statuses, slashing_protection: JSON.stringify(exported) };
}

async function exportHistory(ctx: SignerContext, pubkeys: string[]): Promise<Interchange> {
  const root = ctx.slashing.genesisValidatorsRoot;
  if (root === null) {
    // Nothing was ever signed: an empty interchange for the configured network (or an unknown one).
    return {
      metadata: { interchange_format_version: "5", genesis_validators_root: ctx.config.genesisValidatorsRoot ?? "0x" + "00".repeat(32) },
      data: [] as Interchange["data"],
    };
  }
  return ctx.slashing.exportInterchange({ pubkeys });
}
