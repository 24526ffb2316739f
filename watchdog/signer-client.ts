import {
  ADMIN_ROUTES,
  adminPaths,
  SIGNATURES_MAX_LIMIT,
  type ClientsResponse,
  type ClientView,
  type FenceRequest,
  type FencingResponse,
  type SignatureRecord,
  type SignaturesResponse,
  type StaleGenerationBody,
} from "../admin-api/index.js";
import { readSecretFile } from "../common/index.js";
import type { SignerEndpointConfig } from "./config.js";
import { relayCode, SignerAdminError, StaleGenerationError } from "./errors.js";
import { httpJson } from "./probes/http.js";

/** A body as it arrives: the signer's declared shape, every field still to be checked. */
type Unchecked<T> = { [K in keyof T]?: unknown };

/**
 * The signer's admin API (signer/docs/admin-api.md): fencing with generations, client views, the signature
 * feed. The bearer token is read once from its file and only ever sent in the Authorization header.
 */
export class SignerAdminClient {
  private readonly token: string;

  constructor(readonly endpoint: SignerEndpointConfig) {
    // Refused like the signer refuses its own token files: a token others can read is no longer a secret.
    const token = readSecretFile(endpoint.adminTokenFile, {
      what: "admin token",
      error: (refusal) => new SignerAdminError("ADMIN_TOKEN_UNREADABLE", `signer ${endpoint.id}: ${refusal.message}`),
    }).trim();
    if (token === "") throw new SignerAdminError("ADMIN_TOKEN_UNREADABLE", `signer ${endpoint.id}: admin token file ${endpoint.adminTokenFile} is empty`);
    this.token = token;
  }

  get id(): string {
    return this.endpoint.id;
  }

  async generation(): Promise<number> {
    const body = await this.call<Unchecked<FencingResponse>>("GET", ADMIN_ROUTES.fencing);
    return asGeneration(body.generation, this.id);
  }

  async clients(): Promise<ClientsResponse> {
    const body = await this.call<Unchecked<ClientsResponse>>("GET", ADMIN_ROUTES.clients);
    if (!Array.isArray(body.clients)) throw this.malformed("clients is not an array");
    return { generation: asGeneration(body.generation, this.id), clients: body.clients.map((c) => this.clientView(c)) };
  }

  async client(id: string): Promise<ClientView> {
    return this.clientView(await this.call("GET", adminPaths.client(id)));
  }

  /** Fences a client. Throws StaleGenerationError if the signer has seen a newer generation. */
  async disable(id: string, generation: number, decision: string): Promise<ClientView> {
    return this.clientView(await this.call("POST", adminPaths.fence(id, "disable"), fenceRequest(generation, decision), generation));
  }

  async enable(id: string, generation: number, decision: string): Promise<ClientView> {
    return this.clientView(await this.call("POST", adminPaths.fence(id, "enable"), fenceRequest(generation, decision), generation));
  }

  async signatures(after: number, limit = SIGNATURES_MAX_LIMIT): Promise<SignaturesResponse> {
    const body = await this.call<Unchecked<SignaturesResponse>>("GET", adminPaths.signatures(after, limit));
    if (!Array.isArray(body.signatures)) throw this.malformed("signatures is not an array");
    return { signatures: body.signatures as SignatureRecord[], next: Number(body.next ?? after) };
  }

  private async call<T>(method: "GET" | "POST", route: string, body?: unknown, generation?: number): Promise<T> {
    const r = await httpJson<T>(`${this.endpoint.url}${route}`, {
      method,
      ...(body !== undefined ? { body } : {}),
      timeoutMs: this.endpoint.timeoutMs,
      headers: { authorization: `Bearer ${this.token}` },
    });
    if (r.ok) return (r.body ?? {}) as T;
    const errBody = (r.body ?? {}) as Unchecked<StaleGenerationBody>;
    if (r.status === 409 && errBody.code === "STALE_GENERATION") {
      throw new StaleGenerationError(generation ?? -1, Number(errBody.currentGeneration));
    }
    if (r.status === null) throw new SignerAdminError("SIGNER_UNREACHABLE", `signer ${this.id} is unreachable: ${r.error}`);
    if (r.status === 401) throw new SignerAdminError("SIGNER_UNAUTHORIZED", `signer ${this.id} refused the admin token (401)`, 401);
    if (r.status === 404) throw new SignerAdminError("SIGNER_NOT_FOUND", `signer ${this.id}: ${route} not found (${r.error})`, 404);
    const code = typeof errBody.code === "string" ? relayCode(errBody.code) : "SIGNER_ERROR";
    throw new SignerAdminError(code, `signer ${this.id}: ${method} ${route}: ${r.error}`, r.status);
  }

  private clientView(v: unknown): ClientView {
    const c = v as Partial<ClientView> | null;
    if (!c || typeof c.id !== "string" || typeof c.enabled !== "boolean") throw this.malformed("client view lacks id/enabled");
    return {
      id: c.id,
      enabled: c.enabled,
      changedAtGeneration: Number(c.changedAtGeneration ?? 0),
      inFlight: Number(c.inFlight ?? 0),
      lastRequestAt: c.lastRequestAt ?? null,
      lastSignedAt: c.lastSignedAt ?? null,
      signed: Number(c.signed ?? 0),
      refused: Number(c.refused ?? 0),
      lastSigned: Array.isArray(c.lastSigned) ? c.lastSigned : [],
    };
  }

  private malformed(what: string): SignerAdminError {
    return new SignerAdminError("SIGNER_BAD_RESPONSE", `signer ${this.id} answered an unexpected admin response: ${what}`);
  }
}

const fenceRequest = (generation: number, decision: string): FenceRequest => ({ generation, decision });

function asGeneration(v: unknown, signer: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new SignerAdminError("SIGNER_BAD_RESPONSE", `signer ${signer} reported generation ${String(v)}`);
  return n;
}

/** Retries `fn` on SIGNER_UNREACHABLE / 5xx for up to `budgetMs`; a definite answer (409, 404, 401) is final. */
export async function withSignerRetry<T>(budgetMs: number, fn: () => Promise<T>, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<T> {
  const deadline = Date.now() + budgetMs;
  let delay = 100;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const transient = err instanceof SignerAdminError && !(err instanceof StaleGenerationError) && (err.status === undefined || err.status >= 500);
      if (!transient || Date.now() + delay > deadline) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 2_000);
    }
  }
}
