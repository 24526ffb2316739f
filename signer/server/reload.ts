/**
 * Key reloads as Web3Signer has them (POST /reload, GET /reload) and SIGHUP: one at a time, run in the
 * background; the state of the last one is what GET /reload answers. A reload never refuses or drops a request in
 * flight: removed keys leave after theirs finished (KeyManager.syncWithKeyStore).
 */
import type { Logger } from "pino";
import type { KeySync } from "./key-manager.js";

export type ReloadStatus = "idle" | "running" | "completed" | "completed_with_errors" | "failed";

/**
 * What GET /reload answers: Web3Signer's fields (its openapi-specs/eth2/signing/paths/reload.yaml), each absent
 * rather than null when it has nothing to say, as there.
 */
export interface ReloadView {
  status: ReloadStatus;
  /** When the last reload started, then when it ended (ISO 8601); absent before the first. */
  lastOperationTime?: string;
  /** `failed`: why; `completed_with_errors`: which records were not loaded. Absent otherwise. */
  lastError?: string;
}

/** What POST /reload answers with its 202, as Web3Signer does. */
export const RELOAD_ACCEPTED = { status: "accepted", message: "key reload started; GET /reload shows its state" } as const;

export class KeyReload {
  private state: ReloadView = { status: "idle" };
  private running: Promise<void> | undefined;

  constructor(
    /** Makes the signable keys what the key store holds (with --workers N: in every worker). */
    private readonly sync: () => Promise<KeySync | undefined>,
    private readonly logger: Logger,
  ) {}

  view(): ReloadView {
    return { ...this.state };
  }

  /** Starts a reload in the background; false (nothing started) while one runs. */
  start(trigger: "http" | "sighup"): boolean {
    if (this.running) return false;
    this.track(trigger, this.sync());
    return true;
  }

  /**
   * A `--workers N` worker applying a reload another worker (or the primary, on SIGHUP) started: shown by GET /reload
   * here too, unless this worker started it (its own run covers it).
   */
  async applied(run: Promise<KeySync>): Promise<KeySync> {
    if (!this.running) this.track("sibling", run);
    return run;
  }

  private track(trigger: "http" | "sighup" | "sibling", run: Promise<KeySync | undefined>): void {
    this.state = { status: "running", lastOperationTime: new Date().toISOString() };
    this.logger.info({ trigger }, "reloading keys from the key store");
    this.running = run
      .then(
        (sync) => {
          const refused = sync?.refused ?? [];
          const lastOperationTime = new Date().toISOString();
          this.state =
            refused.length > 0
              ? { status: "completed_with_errors", lastOperationTime, lastError: `${refused.length} record(s) not loaded: ${refused.join("; ")}` }
              : { status: "completed", lastOperationTime };
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          this.logger.error({ err: message }, "key reload failed; the keys loaded before it keep signing");
          this.state = { status: "failed", lastOperationTime: new Date().toISOString(), lastError: message };
        },
      )
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Resolves when no reload runs (at once when none does). */
  async settled(): Promise<void> {
    await this.running;
  }
}
