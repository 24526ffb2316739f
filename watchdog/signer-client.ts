import fs from "node:fs";
import type { SignerEndpointConfig } from "./config.js";
import { relayCode, SignerAdminError, StaleGenerationError } from "./errors.js";
import { httpJson } from "./probes/http.js";

/** What the signer knows about one validator client (admin-api.md, ClientView). */
export interface ClientView {
  id: string;
  enabled: boolean;
  changedAtGeneration: number;
  inFlight: number;
  lastRequestAt: string | null;
  lastSignedAt: string | null;
  signed: number;
  refused: number;
  lastSigned: Array<{ pubkey: string; type: string; slot: string; at: string }>;
}

export interface SignatureRecord {
  seq: number;
  clientId: string;
  pubkey: string;
  type: string;
  slot?: string;
  sourceEpoch?: string;
  targetEpoch?: string;
  signingRoot: string;
  signature: string;
  at: string;
}

/**
 * The signer's admin API (signer/docs/admin-api.md): fencing with generations, client views, the signature
 * feed. The bearer token is read once from its file and only ever sent in the Authorization header.
 */
export class SignerAdminClient {
  private readonly token: string;

  constructor(readonly endpoint: SignerEndpointConfig) {
    let token: string;
    try {
      token = fs.readFileSync(endpoint.adminTokenFile, "utf8").trim();
    } catch (err) {
      throw new SignerAdminError("ADMIN_TOKEN_UNREADABLE", `cannot read the admin token file of signer ${endpoint.id} (${endpoint.adminTokenFile}): ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
    if (token === "") throw new SignerAdminError("ADMIN_TOKEN_UNREADABLE", `the admin token file of signer ${endpoint.id} is empty`);
    this.token = token;
  }

  get id(): string {
    return this.endpoint.id;
  }

  async generation(): Promise<number> {
    const body = await this.call<{ generation?: unknown }>("GET", "/admin/v1/fencing");
    return asGeneration(body.generation, this.id);
  }

  async clients(): Promise<{ generation: number; clients: ClientView[] }> {
    const body = await this.call<{ generation?: unknown; clients?: unknown }>("GET", "/admin/v1/clients");
    if (!Array.isArray(body.clients)) throw this.malformed("clients is not an array");
    return { generation: asGeneration(body.generation, this.id), clients: body.clients.map((c) => this.clientView(c)) };
  }

  async client(id: string): Promise<ClientView> {
    return this.clientView(await this.call("GET", `/admin/v1/clients/${encodeURIComponent(id)}`));
  }

  /** Fences a client. Throws StaleGenerationError if the signer has seen a newer generation. */
  async disable(id: string, generation: number, decision: string): Promise<ClientView> {
    return this.clientView(await this.call("POST", `/admin/v1/clients/${encodeURIComponent(id)}/disable`, { generation, decision }, generation));
  }

  async enable(id: string, generation: number, decision: string): Promise<ClientView> {
    return this.clientView(await this.call("POST", `/admin/v1/clients/${encodeURIComponent(id)}/enable`, { generation, decision }, generation));
  }

  async signatures(after: number, limit = 10_000): Promise<{ signatures: SignatureRecord[]; next: number }> {
    const body = await this.call<{ signatures?: unknown; next?: unknown }>("GET", `/admin/v1/signatures?after=${after}&limit=${limit}`);
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
    const errBody = (r.body ?? {}) as { code?: unknown; currentGeneration?: unknown };
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
