/**
 * The failover state machine. Each record moves forward through these states; every move is committed to
 * watchdog.sqlite BEFORE the step it names is carried out, so a restart always knows the last step that may
 * have started. See watchdog/docs/README.md ("Crash recovery") for what happens on restart in each state.
 */
export const FAILOVER_STATES = [
  "PRECONDITIONS", // checking the target stack; nothing touched yet
  "FENCING", // generation allocated; disabling the old client at its signer and reading it back
  "DRAINING", // the fence is confirmed: stop the old service, wait until no request of it is in flight
  "CONTINUITY", // make sure the new signer knows the old history (shared signer / interchange / watermarks+liveness)
  "ACTIVATING", // enable the new client at its signer, start its service
  "VERIFYING", // wait for the new client's first signature
  "DONE",
  "ROLLED_BACK", // stopped before the fence was confirmed; the old client left or put back as it was
  "FAILED", // stopped after the fence was confirmed; the old client stays fenced, an operator must act
  "REFUSED", // preconditions failed; nothing was touched
] as const;

export type FailoverState = (typeof FAILOVER_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<FailoverState> = new Set(["DONE", "ROLLED_BACK", "FAILED", "REFUSED"]);

export function isTerminal(s: FailoverState): boolean {
  return TERMINAL_STATES.has(s);
}

/** What a restarted watchdog does with a failover it finds in state `s` (its executor being gone). */
export function recoveryAction(s: FailoverState): "none" | "abandon" | "rollback" | "resume" {
  if (isTerminal(s)) return "none";
  if (s === "PRECONDITIONS") return "abandon"; // nothing was done: close it as rolled back
  if (s === "FENCING") return "rollback"; // the fence may or may not have happened: undo only our own
  return "resume"; // fence confirmed: only forward, every remaining step is idempotent
}

export type FailoverTrigger = "auto" | "operator";

/** Facts a failover records as it goes, so a resumed executor can pick up where the old one stopped. */
export interface FailoverProgress {
  fenceConfirmedAt?: number;
  stopCommand?: { ok: boolean; detail: string; at: number };
  drainedAt?: number;
  continuity?: { mode: "shared-signer" | "shared-database" | "interchange" | "watermarks"; detail: string; at: number };
  /** Where the fence was read back: instances confirmed, and those not reached (held by the shared state). */
  fenceInstances?: { confirmed: string[]; unreachable: string[]; sharedState: boolean };
  watermarkEpoch?: number;
  /** Taken before the enable call, with the new client's `signed` count then: what VERIFYING compares to. */
  activationRequestedAt?: number;
  signedBaseline?: number;
  /** The same per instance URL (each instance counts since its own start). */
  signedBaselines?: Record<string, number>;
  activatedAt?: number;
  startCommand?: { ok: boolean; detail: string; at: number };
  firstSignatureAt?: string;
  /** Milliseconds from activation to the new client's first signature. */
  activationToSignatureMs?: number;
  rollback?: { reEnabled: boolean; detail: string };
  resumedAt?: number[];
}

export interface FailoverRecord {
  id: number;
  from: "primary" | "backup";
  to: "primary" | "backup";
  trigger: FailoverTrigger;
  reason: string;
  state: FailoverState;
  generation: number | null;
  progress: FailoverProgress;
  outcomeCode: string | null;
  outcomeMessage: string | null;
  startedAt: number;
  updatedAt: number;
  endedAt: number | null;
  lease: { owner: string | null; pid: number | null; host: string | null; expiresAt: number | null };
}
