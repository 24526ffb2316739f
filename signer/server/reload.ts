/**
 * Key reloads as Web3Signer has them (POST /reload, GET /reload) and SIGHUP: one at a time, run in the
 * background; the state of the last one is what GET /reload answers. A reload never refuses or drops a request in
 * flight: removed keys leave after theirs finished (KeyManager.syncWithKeyStore).
 */
import type { Logger } from "pino";
import type { KeySync } from "./key-manager.js";

export type ReloadStatus = "idle" | "running" | "completed" | "completed_with_errors" | "failed";

/** What GET /reload answers. */
export interface ReloadView {
  status: ReloadStatus;
  /** When the last reload started (ISO 8601); null before the first. */
  lastRunAt: string | null;
  /** Why the last reload failed, or which records it could not load; null when it had no error. */
  lastError: string | null;
}

export class KeyReload {
  private state: ReloadView = { status: "idle", lastRunAt: null, lastError: null };
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
    this.state = { status: "running", lastRunAt: new Date().toISOString(), lastError: null };
    this.logger.info({ trigger }, "reloading keys from the key store");
    this.running = run
      .then(
        (sync) => {
          const refused = sync?.refused ?? [];
          this.state =
            refused.length > 0
              ? { ...this.state, status: "completed_with_errors", lastError: `${refused.length} record(s) not loaded: ${refused.join("; ")}` }
              : { ...this.state, status: "completed" };
        },
        (err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          this.logger.error({ err: message }, "key reload failed; the keys loaded before it keep signing");
          this.state = { ...this.state, status: "failed", lastError: message };
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
