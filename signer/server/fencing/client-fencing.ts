/**
 * The signer's client state (signer/docs/admin-api.md): one fencing generation for the whole signer and, per
 * client, enabled + the generation of its last change. Two homes: a SQLite file in the data directory (one signer
 * process: ./sqlite.ts) or the PostgreSQL slashing database that several signer instances share (./postgres.ts),
 * where a disable acknowledged through any instance holds at all of them (signer/docs/fencing-across-instances.md).
 */

export interface ClientFence {
  enabled: boolean;
  changedAtGeneration: number;
}

export type FenceResult =
  | { ok: true; fence: ClientFence; generation: number }
  /** STALE: older than the signer's generation; GENERATION_TAKEN: the current one belongs to another decision. */
  | { ok: false; currentGeneration: number; reason: "STALE" | "GENERATION_TAKEN" };

export interface ClientFencing {
  /** The generation as this instance last saw it (in-memory copy). */
  readonly generation: number;
  /** A client's state as this instance last saw it; a client never changed has its configured initial state at generation 0. */
  fence(clientId: string): ClientFence;
  /** The in-memory copy: a cheap early refusal at admission, never the last word (that is `releaseIfEnabled`). */
  isEnabled(clientId: string): boolean;
  /**
   * Enables or disables a client at `generation` (semantics: ./sqlite.ts). Resolves only once the change is
   * durable where every instance reads it, so the admin API's answer comes after it.
   */
  apply(clientId: string, enabled: boolean, generation: number, decision?: string): Promise<FenceResult>;
  /**
   * The release gate: calls `send` if the client is enabled, with the last check and `send` in one step that a
   * disable cannot overtake; resolves true if sent, false if refused (disabled). Rejects (SlashingDbUnavailableError)
   * when the state cannot be read: fail closed, nothing sent.
   */
  releaseIfEnabled(clientId: string, send: () => void): Promise<boolean>;
  close(): Promise<void>;
}
