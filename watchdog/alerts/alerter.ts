import os from "node:os";
import type { Logger } from "../log.js";
import type { WatchdogMetrics } from "../metrics.js";
import type { WebhookSender } from "./webhook.js";

export type AlertLevel = "info" | "warning" | "critical";

export interface Alert {
  level: AlertLevel;
  /** Stable machine-readable name, e.g. failover_started, failover_done, backup_unhealthy. */
  event: string;
  message: string;
  stack?: string;
  failoverId?: number;
  state?: string;
  data?: Record<string, unknown>;
}

/**
 * Fans an alert out to the log, the metrics and the webhook. Webhook deliveries run one at a time in order,
 * in the background: a slow webhook never delays a failover step.
 */
export class Alerter {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: Logger,
    private readonly metrics?: WatchdogMetrics,
    private readonly webhook?: WebhookSender,
  ) {}

  send(alert: Alert): void {
    const method = alert.level === "critical" ? "error" : alert.level === "warning" ? "warn" : "info";
    this.log[method]({ alert: alert.event, stack: alert.stack, failoverId: alert.failoverId, state: alert.state, ...alert.data }, alert.message);
    this.metrics?.alerts.inc({ level: alert.level, event: alert.event });
    const webhook = this.webhook;
    if (!webhook) return;
    const payload = { source: "vigil-watchdog", host: os.hostname(), at: new Date().toISOString(), ...alert };
    this.chain = this.chain.then(async () => {
      const r = await webhook.send(payload);
      if (!r.delivered) {
        this.metrics?.webhookFailures.inc();
        this.log.warn({ alert: alert.event, attempts: r.attempts, error: r.lastError }, "alert webhook did not accept the alert");
      }
    });
  }

  /** Waits for queued webhook deliveries (at shutdown, and in tests). */
  flush(): Promise<void> {
    return this.chain;
  }
}
