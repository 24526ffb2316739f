/**
 * The signer's admin API (signer/docs/admin-api.md), typed once: its paths and the body of every request and
 * response. The signer serves it (signer/server/routes/admin.ts), the watchdog calls it
 * (watchdog/signer-client.ts), the tests fake and read it.
 *
 * It lives beside the parts, not inside the signer, so the watchdog can depend on the contract without
 * loading the signer (fastify, PKCS#11, BLS workers): as Lodestar's routes sit in packages/api, shared by
 * the beacon node that serves them and the validator that calls them. It imports nothing.
 */

export const ADMIN_API_PREFIX = "/admin/v1";

/** Route patterns as the server registers them (`:id` is a client id). */
export const ADMIN_ROUTES = {
  fencing: `${ADMIN_API_PREFIX}/fencing`,
  clients: `${ADMIN_API_PREFIX}/clients`,
  client: `${ADMIN_API_PREFIX}/clients/:id`,
  disable: `${ADMIN_API_PREFIX}/clients/:id/disable`,
  enable: `${ADMIN_API_PREFIX}/clients/:id/enable`,
  signatures: `${ADMIN_API_PREFIX}/signatures`,
  slashingDb: `${ADMIN_API_PREFIX}/slashing-db`,
  sharingNonce: `${ADMIN_API_PREFIX}/slashing-db/sharing-nonce`,
} as const;

/** Concrete paths as a caller sends them. */
export const adminPaths = {
  client: (id: string): string => `${ADMIN_API_PREFIX}/clients/${encodeURIComponent(id)}`,
  fence: (id: string, action: FenceAction): string => `${ADMIN_API_PREFIX}/clients/${encodeURIComponent(id)}/${action}`,
  signatures: (after: number, limit: number): string => `${ADMIN_API_PREFIX}/signatures?after=${after}&limit=${limit}`,
};

// --- fencing ------------------------------------------------------------------------------------------------

export const FENCE_ACTIONS = ["disable", "enable"] as const;
export type FenceAction = (typeof FENCE_ACTIONS)[number];

/** A decision id names who holds a generation (the watchdog sends its failover id). */
export const DECISION_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** `GET /admin/v1/fencing` */
export interface FencingResponse {
  generation: number;
}

/** `POST /admin/v1/clients/{id}/disable` and `…/enable`; answered with the ClientView. */
export interface FenceRequest {
  /** A non-negative integer; lower than the signer's → 409 STALE_GENERATION. */
  generation: number;
  /** Optional holder of the generation: DECISION_PATTERN. */
  decision?: string;
}

// --- what the signer has seen -------------------------------------------------------------------------------

/** The newest signature of one key for a client. `slot` is null for types without a slot (RANDAO_REVEAL…). */
export interface LastSignedEntry {
  pubkey: string;
  type: string;
  slot: string | null;
  at: string;
}

/** `GET /admin/v1/clients/{id}`: one validator client as the signer sees it. */
export interface ClientView {
  id: string;
  enabled: boolean;
  changedAtGeneration: number;
  /** Requests accepted and not yet answered. */
  inFlight: number;
  lastRequestAt: string | null;
  lastSignedAt: string | null;
  /** Since start. */
  signed: number;
  refused: number;
  /** Newest first, one per key, at most 1000. */
  lastSigned: LastSignedEntry[];
}

/**
 * One view per client over a signer's instances (or the workers of one `--workers N` signer). HAProxy, or the
 * cluster's round-robin, spreads a client's requests over them, so each instance sees only its share: the witness must take the newest request and signature anywhere (a client quiet at one
 * instance may be busy at another), the sums of the counters, and `enabled` if any instance says so (a standby
 * enabled anywhere is fenced; an active client is judged by its traffic).
 */
export function mergeClientViews(perInstance: readonly ClientView[][]): ClientView[] {
  const byId = new Map<string, ClientView[]>();
  for (const views of perInstance) for (const v of views) byId.set(v.id, [...(byId.get(v.id) ?? []), v]);
  const newest = (xs: (string | null)[]) => xs.reduce<string | null>((a, b) => (b !== null && (a === null || Date.parse(b) > Date.parse(a)) ? b : a), null);
  return [...byId.values()].map((views) => {
    const lastSigned = new Map<string, ClientView["lastSigned"][number]>();
    for (const e of views.flatMap((v) => v.lastSigned)) {
      const known = lastSigned.get(e.pubkey);
      if (!known || Date.parse(e.at) > Date.parse(known.at)) lastSigned.set(e.pubkey, e);
    }
    return {
      id: views[0]!.id,
      enabled: views.some((v) => v.enabled),
      changedAtGeneration: Math.max(...views.map((v) => v.changedAtGeneration)),
      inFlight: views.reduce((n, v) => n + v.inFlight, 0),
      lastRequestAt: newest(views.map((v) => v.lastRequestAt)),
      lastSignedAt: newest(views.map((v) => v.lastSignedAt)),
      signed: views.reduce((n, v) => n + v.signed, 0),
      refused: views.reduce((n, v) => n + v.refused, 0),
      lastSigned: [...lastSigned.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)),
    };
  });
}

/** `GET /admin/v1/clients` */
export interface ClientsResponse {
  generation: number;
  clients: ClientView[];
}

// --- the signature feed -------------------------------------------------------------------------------------

export const SIGNATURES_DEFAULT_LIMIT = 1000;
export const SIGNATURES_MAX_LIMIT = 10_000;

/** `GET /admin/v1/signatures?after=<seq>&limit=<n>` (both optional, as strings on the wire). */
export interface SignaturesQuery {
  after?: string;
  limit?: string;
}

/** One signature the signer released (also one line of `<dataDir>/audit/signatures.jsonl`). */
export interface SignatureRecord {
  /** Never reused, strictly increasing, gaps possible after a crash. */
  seq: number;
  clientId: string;
  pubkey: string;
  type: string;
  slot: string | null;
  sourceEpoch: string | null;
  targetEpoch: string | null;
  signingRoot: string;
  signature: string;
  at: string;
}

export interface SignaturesResponse {
  signatures: SignatureRecord[];
  /** The cursor for the next call's `after`. */
  next: number;
}

// --- the slashing database's identity (the watchdog's proof of a shared database) -------------------------

/** A nonce: 32 to 64 lower-case hex digits. */
export const SHARING_NONCE_PATTERN = /^[0-9a-f]{32,64}$/;

/**
 * `GET /admin/v1/slashing-db`, read from the database at each call. `historyId`: random, made once per database
 * by its schema migration, kept by replication and by every copy. `sharingNonce`: the latest nonce written
 * into the database through any signer on it. `fencingShared`: the client fencing state lives in this database
 * (PostgreSQL), so a disable through one instance holds at every instance on it.
 */
export interface SlashingDbResponse {
  backend: "sqlite" | "postgres";
  historyId: string;
  sharingNonce: { nonce: string; writtenAt: string } | null;
  fencingShared: boolean;
}

/** `POST /admin/v1/slashing-db/sharing-nonce`: committed before the answer (a SlashingDbResponse read after it). */
export interface SharingNonceRequest {
  nonce: string;
}

// --- errors -------------------------------------------------------------------------------------------------

/**
 * STATE_UNAVAILABLE (503, Retry-After): the shared client state (PostgreSQL) could not be changed; nothing is acknowledged.
 * SLASHING_DB_UNAVAILABLE (503, Retry-After): the slashing database's identity could not be read or the nonce written.
 */
export type AdminErrorCode =
  | "UNAUTHENTICATED"
  | "AUTH_THROTTLED"
  | "INVALID_REQUEST"
  | "UNKNOWN_CLIENT"
  | "STALE_GENERATION"
  | "STATE_UNAVAILABLE"
  | "SLASHING_DB_UNAVAILABLE"
  | "INTERNAL";

/** Every error answer. `field` names the bad request field of an INVALID_REQUEST. */
export interface AdminErrorBody {
  code: AdminErrorCode;
  message: string;
  field?: string;
}

/** STALE: older than the signer's generation; GENERATION_TAKEN: the current one is held by another decision. */
export type StaleGenerationReason = "STALE" | "GENERATION_TAKEN";

/** 409 to a disable/enable: nothing changed. */
export interface StaleGenerationBody extends AdminErrorBody {
  code: "STALE_GENERATION";
  reason: StaleGenerationReason;
  currentGeneration: number;
}
