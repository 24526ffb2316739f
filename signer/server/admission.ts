/**
 * Admission by expected wait. A fixed queue depth says nothing about time: at twice the sustainable rate the old
 * 16,384 limit was reached only after requests were seconds old, so clients timed out while the signer kept signing
 * for them. Here a new request's wait is estimated as (requests ahead) ÷ (the rate the sign path drains them), and
 * a request that would wait longer than `maxWaitMs` is refused at once (OverloadedError: 503 + Retry-After), before anything is
 * recorded or signed. The fixed depth stays as a hard backstop.
 *
 * The drain rate is measured, not configured:
 * - under backlog, from requests that had at least MIN_BACKLOG ahead of them when admitted: (ahead + 1) ÷ their
 *   time to a signature. Only backlogged requests say anything about capacity: when the queue is short their time
 *   is the pipeline's latency (a commit, a batch), not its rate;
 * - otherwise (no backlog lately, e.g. the first burst after a quiet spell), from the BLS workers' own signing
 *   time (threads ÷ time per signature): the ceiling of the sign path, so a burst is never refused on a pessimistic
 *   guess;
 * - with neither (nothing signed yet), nothing is refused but by the backstop.
 */
import { QueueFullError } from "../signing/index.js";
import { OverloadedError } from "./service-errors.js";

/** Requests ahead at admission for a completion to count as a capacity sample. */
const MIN_BACKLOG = 32;
/** Weight of one capacity sample in the moving average (samples come at the signing rate: hundreds per second). */
const SAMPLE_WEIGHT = 0.02;
/** A backlog measurement older than this is not trusted over the workers' ceiling. */
const FRESH_MS = 10_000;

export type ShedReason = "expected_wait" | "queue_full";

export interface AdmissionOptions {
  maxWaitMs: number;
  maxQueueDepth: number;
  /** Signatures per ms the BLS workers can make (their measured ceiling); undefined until known. */
  capacityHint: () => number | undefined;
  onShed?: (reason: ShedReason) => void;
  now?: () => number;
}

/** What admission remembers of a request until it is signed. */
export interface Ticket {
  at: number;
  ahead: number;
}

export class AdmissionControl {
  private measuredPerMs: number | undefined;
  private measuredAt = -Infinity;
  private readonly now: () => number;

  constructor(private readonly options: AdmissionOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Requests per ms the sign path drains now (see the module comment); undefined when unknown. */
  get serviceRatePerMs(): number | undefined {
    if (this.measuredPerMs !== undefined && this.now() - this.measuredAt < FRESH_MS) return this.measuredPerMs;
    return this.options.capacityHint();
  }

  /** How long a request admitted now with `queued` requests ahead would wait for its signature (ms). */
  expectedWaitMs(queued: number): number {
    const rate = this.serviceRatePerMs;
    return rate === undefined || queued === 0 ? 0 : queued / rate;
  }

  /** Throws OverloadedError (or QueueFullError at the backstop) when a request with `queued` ahead cannot be served in time. */
  check(queued: number): void {
    const { maxQueueDepth, maxWaitMs } = this.options;
    if (queued >= maxQueueDepth) {
      this.options.onShed?.("queue_full");
      throw new QueueFullError(maxQueueDepth);
    }
    const wait = this.expectedWaitMs(queued);
    if (wait > maxWaitMs) {
      this.options.onShed?.("expected_wait");
      // Retry once the excess has drained (at least a second: Retry-After counts whole seconds).
      const retryAfter = Math.min(60, Math.max(1, Math.ceil((wait - maxWaitMs) / 1000)));
      throw new OverloadedError(Math.round(wait), maxWaitMs, retryAfter);
    }
  }

  /** Starts timing an admitted request with `queued` ahead; hand the ticket to `signed` once it is signed. */
  ticket(queued: number): Ticket {
    return { at: this.now(), ahead: queued };
  }

  /** A request admitted with `ticket` was signed: a capacity sample if it had waited behind a backlog. */
  signed(ticket: Ticket): void {
    if (ticket.ahead < MIN_BACKLOG) return;
    const now = this.now();
    const elapsed = now - ticket.at;
    if (elapsed <= 0) return;
    const sample = (ticket.ahead + 1) / elapsed;
    const fresh = this.measuredPerMs !== undefined && now - this.measuredAt < FRESH_MS;
    // A new backlog starts from the workers' ceiling rather than from its first, shortest-queued samples.
    const from = fresh ? this.measuredPerMs! : (this.options.capacityHint() ?? sample);
    this.measuredPerMs = from + SAMPLE_WEIGHT * (sample - from);
    this.measuredAt = now;
  }
}
