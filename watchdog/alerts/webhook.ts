import { readSecretFile } from "../../common/index.js";
import type { WebhookConfig } from "../config.js";
import { WatchdogConfigError } from "../errors.js";

/** POSTs a JSON alert to the operator's webhook, with a timeout per attempt and backoff between retries. */
export class WebhookSender {
  private readonly token: string | undefined;

  constructor(
    private readonly cfg: WebhookConfig,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    this.token =
      cfg.tokenFile !== undefined
        ? readSecretFile(cfg.tokenFile, {
            what: "webhook token",
            error: (refusal) => new WatchdogConfigError("alerts.webhook.tokenFile", refusal.message),
          }).trim()
        : undefined;
  }

  /** Resolves true once the webhook answered 2xx, false after the last retry failed. Never throws. */
  async send(payload: object): Promise<{ delivered: boolean; attempts: number; lastError?: string }> {
    let lastError = "";
    for (let attempt = 1; attempt <= this.cfg.retries + 1; attempt++) {
      try {
        const res = await fetch(this.cfg.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
          body: JSON.stringify(payload),
          signal: AbortSignal.timeout(this.cfg.timeoutMs),
        });
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 300) return { delivered: true, attempts: attempt };
        lastError = `HTTP ${res.status}`;
        if (res.status >= 400 && res.status < 500 && res.status !== 429) break; // the receiver will not change its mind
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        lastError = e.name === "TimeoutError" ? `timed out after ${this.cfg.timeoutMs} ms` : (e.cause?.code ?? e.message);
      }
      if (attempt <= this.cfg.retries) await this.sleep(Math.min(250 * 2 ** (attempt - 1), 5_000));
    }
    return { delivered: false, attempts: this.cfg.retries + 1, lastError };
  }
}
