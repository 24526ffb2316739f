/**
 * Failed authentications (admin, keymanager and eth2 APIs): counted, logged at most once per interval per API
 * (with how many were left out), and throttled per remote address and globally with token buckets. A 403 of an
 * identified caller is counted and logged the same way (vigil_signer_auth_failures_total), never throttled.
 *
 * Decision: a correct token is always checked first (constant time) and always passes, throttled or not. The
 * watchdog's fencing call must get through even while an attacker on the same loopback address floods wrong
 * tokens, and refusing the operator would make a failed-auth flood a denial of fencing. Only failed attempts
 * are throttled: past the bucket, they get 429 + Retry-After instead of 401/403. What keeps a guess from
 * succeeding is the token itself (16 characters at least, 256 random bits when Vigil generates it).
 * Presented tokens are never logged.
 */
import type { Logger } from "pino";

export type AuthApi = "admin" | "keymanager" | "eth2";

export interface AuthThrottleOptions {
  /** Failed attempts one remote address may make in a burst, and refilled per second. */
  perSourceBurst?: number;
  perSourcePerSecond?: number;
  /** The same for all addresses together (every caller may be loopback; many addresses may be one attacker). */
  globalBurst?: number;
  globalPerSecond?: number;
  /** At most one log line per API per interval. */
  logIntervalMs?: number;
  /** Remote addresses tracked at once; the oldest is forgotten past this (the global bucket still holds). */
  maxSources?: number;
}

export type AuthVerdict = { throttled: false } | { throttled: true; retryAfterSeconds: number };

class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perMs: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
  }

  /** Ms until one token is available (0: available now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.perMs;
  }

  take(): void {
    this.tokens -= 1;
  }

  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

export class AuthFailureGuard {
  private readonly opts: Required<AuthThrottleOptions>;
  private readonly sources = new Map<string, TokenBucket>();
  private readonly global: TokenBucket;
  /** Per API and kind (401 failures, 403 refusals): a storm of one does not hide the first line of the other. */
  private readonly logState = new Map<string, { lastAt: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly count: (api: AuthApi, throttled: boolean) => void,
    opts: AuthThrottleOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.opts = {
      perSourceBurst: opts.perSourceBurst ?? 10,
      perSourcePerSecond: opts.perSourcePerSecond ?? 1,
      globalBurst: opts.globalBurst ?? 50,
      globalPerSecond: opts.globalPerSecond ?? 5,
      logIntervalMs: opts.logIntervalMs ?? 10_000,
      maxSources: opts.maxSources ?? 10_000,
    };
    this.global = new TokenBucket(this.opts.globalBurst, this.opts.globalPerSecond / 1000, this.now());
  }

  /** Records one failed attempt; says whether to answer it 429 (throttled) rather than 401/403. */
  failed(api: AuthApi, remote: string | undefined, reason: string): AuthVerdict {
    const now = this.now();
    const source = this.bucketFor(remote ?? "unknown", now);
    const wait = Math.max(source.waitMs(now), this.global.waitMs(now));
    const throttled = wait > 0;
    if (!throttled) {
      source.take();
      this.global.take();
    }
    this.count(api, throttled);
    this.log(api, "failed", remote, reason, throttled, now);
    return throttled ? { throttled: true, retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) } : { throttled: false };
  }

  /**
   * Records one 403 of an identified caller (a key outside its list, a type it may not have signed, a client
   * disabled through the admin API): counted and logged like a failed attempt, never throttled. The caller
   * holds a right token, so turning its refusals into 429 would only hide why it is refused.
   */
  forbidden(api: AuthApi, remote: string | undefined, reason: string): void {
    this.count(api, false);
    this.log(api, "forbidden", remote, reason, false, this.now());
  }

  private bucketFor(remote: string, now: number): TokenBucket {
    let bucket = this.sources.get(remote);
    if (bucket === undefined) {
      if (this.sources.size >= this.opts.maxSources) {
        // Forget full buckets first (nothing lost), else the oldest.
        for (const [key, b] of this.sources) if (b.full(now)) this.sources.delete(key);
        if (this.sources.size >= this.opts.maxSources) this.sources.delete(this.sources.keys().next().value!);
      }
      bucket = new TokenBucket(this.opts.perSourceBurst, this.opts.perSourcePerSecond / 1000, now);
      this.sources.set(remote, bucket);
    }
    return bucket;
  }

  private log(api: AuthApi, kind: "failed" | "forbidden", remote: string | undefined, reason: string, throttled: boolean, now: number): void {
    const key = `${api}|${kind}`;
    const state = this.logState.get(key) ?? { lastAt: -Infinity, suppressed: 0 };
    this.logState.set(key, state);
    if (now - state.lastAt < this.opts.logIntervalMs) {
      state.suppressed++;
      return;
    }
    const every = Math.round(this.opts.logIntervalMs / 1000);
    this.logger.warn(
      { api, remote, reason, throttled, suppressedSinceLastLine: state.suppressed },
      kind === "failed"
        ? `${api} API: authentication failed (${reason}); further failures are logged at most every ${every} s`
        : `${api} API: request forbidden (${reason}); further refusals are logged at most every ${every} s`,
    );
    state.lastAt = now;
    state.suppressed = 0;
  }
}

export const AUTH_THROTTLED = "AUTH_THROTTLED";

/** The body of a throttled failed attempt. */
export function throttledBody(api: AuthApi, retryAfterSeconds: number): { code: string; message: string } {
  return { code: AUTH_THROTTLED, message: `${api} API: too many failed authentications from this address or in total; retry after ${retryAfterSeconds} s` };
}
