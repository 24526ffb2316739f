import {
  ADMIN_ROUTES,
  adminPaths,
  SIGNATURES_MAX_LIMIT,
  type ClientsResponse,
  type ClientView,
  type FenceRequest,
  type FencingResponse,
  type SignatureRecord,
  type SharingNonceRequest,
  type SignaturesResponse,
  type SlashingDbResponse,
  type StaleGenerationBody,
} from "../admin-api/index.js";
import { readSecretFile } from "../common/index.js";
import type { SignerEndpointConfig } from "./config.js";
import { relayCode, SignerAdminError, StaleGenerationError } from "./errors.js";
import { httpJson } from "./probes/http.js";

/** A body as it arrives: the signer's declared shape, every field still to be checked. */
type Unchecked<T> = { [K in keyof T]?: unknown };

/**
 * One signer instance's admin API (signer/docs/admin-api.md) at one base URL: fencing with generations, client
 * views, the signature feed, the slashing database's identity. The bearer token is only ever sent in the
 * Authorization header.
 */
export class SignerInstanceClient {
  constructor(
    /** The signer (config key) this instance belongs to. */
    readonly signerId: string,
    readonly url: string,
    private readonly token: string,
    private readonly timeoutMs: number,
    /** How errors name it: the signer id alone when it has one instance (the messages operators know). */
    private readonly label: string,
  ) {}

  async generation(): Promise<number> {
    const body = await this.call<Unchecked<FencingResponse>>("GET", ADMIN_ROUTES.fencing);
    return asGeneration(body.generation, this.label);
  }

  async clients(): Promise<ClientsResponse> {
    const body = await this.call<Unchecked<ClientsResponse>>("GET", ADMIN_ROUTES.clients);
    if (!Array.isArray(body.clients)) throw this.malformed("clients is not an array");
    return { generation: asGeneration(body.generation, this.label), clients: body.clients.map((c) => this.clientView(c)) };
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

  /** The slashing database's identity, read from the database now; null from a signer without the endpoint (404). */
  async slashingDb(): Promise<SlashingDbResponse | null> {
    try {
      return this.identity(await this.call("GET", ADMIN_ROUTES.slashingDb));
    } catch (err) {
      if (err instanceof SignerAdminError && err.code === "SIGNER_NOT_FOUND") return null;
      throw err;
    }
  }

  /** Writes a sharing nonce into this instance's slashing database (committed before the answer). */
  async writeSharingNonce(nonce: string): Promise<SlashingDbResponse> {
    const body: SharingNonceRequest = { nonce };
    return this.identity(await this.call("POST", ADMIN_ROUTES.sharingNonce, body));
  }

  private async call<T>(method: "GET" | "POST", route: string, body?: unknown, generation?: number): Promise<T> {
    const r = await httpJson<T>(`${this.url}${route}`, {
      method,
      ...(body !== undefined ? { body } : {}),
      timeoutMs: this.timeoutMs,
      headers: { authorization: `Bearer ${this.token}` },
    });
    if (r.ok) return (r.body ?? {}) as T;
    const errBody = (r.body ?? {}) as Unchecked<StaleGenerationBody>;
    if (r.status === 409 && errBody.code === "STALE_GENERATION") {
      throw new StaleGenerationError(generation ?? -1, Number(errBody.currentGeneration));
    }
    if (r.status === null) throw new SignerAdminError("SIGNER_UNREACHABLE", `signer ${this.label} is unreachable: ${r.error}`);
    if (r.status === 401) throw new SignerAdminError("SIGNER_UNAUTHORIZED", `signer ${this.label} refused the admin token (401)`, 401);
    if (r.status === 404) throw new SignerAdminError("SIGNER_NOT_FOUND", `signer ${this.label}: ${route} not found (${r.error})`, 404);
    const code = typeof errBody.code === "string" ? relayCode(errBody.code) : "SIGNER_ERROR";
    throw new SignerAdminError(code, `signer ${this.label}: ${method} ${route}: ${r.error}`, r.status);
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

  private identity(v: unknown): SlashingDbResponse {
    const d = v as Unchecked<SlashingDbResponse> | null;
    if (!d || (d.backend !== "sqlite" && d.backend !== "postgres") || typeof d.historyId !== "string" || d.historyId === "") {
      throw this.malformed("slashing-db identity lacks backend/historyId");
    }
    const n = d.sharingNonce as Partial<SharingNonce> | null | undefined;
    return {
      backend: d.backend,
      historyId: d.historyId,
      sharingNonce: n && typeof n.nonce === "string" && typeof n.writtenAt === "string" ? { nonce: n.nonce, writtenAt: n.writtenAt } : null,
      fencingShared: d.fencingShared === true,
    };
  }

  private malformed(what: string): SignerAdminError {
    return new SignerAdminError("SIGNER_BAD_RESPONSE", `signer ${this.label} answered an unexpected admin response: ${what}`);
  }
}

type SharingNonce = NonNullable<SlashingDbResponse["sharingNonce"]>;

/** What one instance answered, or why it did not. */
export type InstanceResult<T> = { url: string; ok: true; value: T } | { url: string; ok: false; error: Error };

/**
 * One signer: its instances (one, or several processes or hosts on one shared slashing database). A call goes to
 * the first instance that answers, in config order: an instance that cannot be reached or answers 5xx is passed
 * over, a definite answer (409, 404, 401) is final. What must hold at every instance (a fence, an activation,
 * the drain) is checked with `each` (./failover/instance-fence.ts).
 */
export class SignerAdminClient {
  readonly instances: readonly SignerInstanceClient[];

  constructor(readonly endpoint: SignerEndpointConfig) {
    // Refused like the signer refuses its own token files: a token others can read is no longer a secret.
    const token = readSecretFile(endpoint.adminTokenFile, {
      what: "admin token",
      error: (refusal) => new SignerAdminError("ADMIN_TOKEN_UNREADABLE", `signer ${endpoint.id}: ${refusal.message}`),
    }).trim();
    if (token === "") throw new SignerAdminError("ADMIN_TOKEN_UNREADABLE", `signer ${endpoint.id}: admin token file ${endpoint.adminTokenFile} is empty`);
    const several = endpoint.urls.length > 1;
    this.instances = endpoint.urls.map(
      (url) => new SignerInstanceClient(endpoint.id, url, token, endpoint.timeoutMs, several ? `${endpoint.id} (${url})` : endpoint.id),
    );
  }

  get id(): string {
    return this.endpoint.id;
  }

  generation(): Promise<number> {
    return this.first((i) => i.generation());
  }

  clients(): Promise<ClientsResponse> {
    return this.first((i) => i.clients());
  }

  client(id: string): Promise<ClientView> {
    return this.first((i) => i.client(id));
  }

  /** One call: with a shared fencing state it is the fence at every instance; confirm with `each`. */
  disable(id: string, generation: number, decision: string): Promise<ClientView> {
    return this.first((i) => i.disable(id, generation, decision));
  }

  enable(id: string, generation: number, decision: string): Promise<ClientView> {
    return this.first((i) => i.enable(id, generation, decision));
  }

  signatures(after: number, limit = SIGNATURES_MAX_LIMIT): Promise<SignaturesResponse> {
    return this.first((i) => i.signatures(after, limit));
  }

  /** `fn` at every instance concurrently; never throws. */
  each<T>(fn: (instance: SignerInstanceClient) => Promise<T>): Promise<InstanceResult<T>[]> {
    return Promise.all(
      this.instances.map(async (i): Promise<InstanceResult<T>> => {
        try {
          return { url: i.url, ok: true, value: await fn(i) };
        } catch (err) {
          return { url: i.url, ok: false, error: err as Error };
        }
      }),
    );
  }

  /** `fn` at the first instance that answers, in config order; a definite answer (409, 404, 401) is final. */
  async first<T>(fn: (instance: SignerInstanceClient) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const instance of this.instances) {
      try {
        return await fn(instance);
      } catch (err) {
        if (!isTransient(err)) throw err;
        last = err;
      }
    }
    throw last;
  }
}

/** Unreachable or 5xx: another instance (or a retry) may answer. */
export function isTransient(err: unknown): boolean {
  return err instanceof SignerAdminError && !(err instanceof StaleGenerationError) && (err.status === undefined || err.status >= 500);
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
      if (!isTransient(err) || Date.now() + delay > deadline) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 2_000);
    }
  }
}
