import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registerBuildInfo, registerRunningTotal } from "../common/index.js";
import { STACK_NAMES, type StackName } from "./config.js";
import { FAILOVER_STATES, type FailoverState } from "./failover/states.js";
import { logLinesDropped } from "./log.js";

/** The watchdog's Prometheus metrics, on a registry of its own (served at /metrics by the daemon). */
export class WatchdogMetrics {
  readonly registry = new Registry();
  readonly failoverState = new Gauge({
    name: "vigil_watchdog_failover_state",
    help: "1 for the state of the open failover (IDLE when none)",
    labelNames: ["state"],
    registers: [this.registry],
  });
  readonly failovers = new Counter({
    name: "vigil_watchdog_failovers_total",
    help: "Failovers by trigger and outcome",
    labelNames: ["trigger", "outcome"],
    registers: [this.registry],
  });
  readonly activeStack = new Gauge({
    name: "vigil_watchdog_active_stack",
    help: "1 for the stack the watchdog considers active",
    labelNames: ["stack"],
    registers: [this.registry],
  });
  readonly probeUp = new Gauge({
    name: "vigil_watchdog_probe_up",
    help: "Last probe result (1 ok, 0 failed)",
    labelNames: ["stack", "probe"],
    registers: [this.registry],
  });
  readonly probes = new Counter({
    name: "vigil_watchdog_probes_total",
    help: "Probes run by result",
    labelNames: ["stack", "probe", "result"],
    registers: [this.registry],
  });
  readonly probeDuration = new Histogram({
    name: "vigil_watchdog_probe_duration_seconds",
    help: "Probe duration",
    labelNames: ["stack", "probe"],
    buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly stackHealthy = new Gauge({
    name: "vigil_watchdog_stack_healthy",
    help: "1 if the stack is healthy after hysteresis",
    labelNames: ["stack"],
    registers: [this.registry],
  });
  readonly consecutiveBad = new Gauge({
    name: "vigil_watchdog_active_consecutive_bad_checks",
    help: "Checks in a row that found the active stack silent at the signer",
    registers: [this.registry],
  });
  readonly lastRequestAge = new Gauge({
    name: "vigil_watchdog_signer_last_request_age_seconds",
    help: "Seconds since the signer last saw a request from the client",
    labelNames: ["client"],
    registers: [this.registry],
  });
  readonly clientEnabled = new Gauge({
    name: "vigil_watchdog_signer_client_enabled",
    help: "1 if the client is enabled at its signer",
    labelNames: ["client"],
    registers: [this.registry],
  });
  readonly alerts = new Counter({ name: "vigil_watchdog_alerts_total", help: "Alerts raised", labelNames: ["level", "event"], registers: [this.registry] });
  readonly httpRefusals = new Counter({
    name: "vigil_watchdog_http_refusals_total",
    help: "Requests to the metrics listener refused by the Host/Origin guard, by code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly webhookFailures = new Counter({
    name: "vigil_watchdog_webhook_failures_total",
    help: "Alerts the webhook did not accept after all retries",
    registers: [this.registry],
  });
  readonly activationToSignature = new Gauge({
    name: "vigil_watchdog_activation_to_first_signature_seconds",
    help: "Last failover: seconds from activation to the new client's first signature",
    registers: [this.registry],
  });

  readonly heartbeat = new Gauge({
    name: "vigil_watchdog_heartbeat_timestamp_seconds",
    help: "Unix time the daemon's monitoring loop last completed a round (0 before the first); stale means the loop is stuck or failing",
    registers: [this.registry],
  });

  constructor() {
    registerBuildInfo(this.registry);
    registerRunningTotal(
      this.registry,
      "vigil_log_lines_dropped_total",
      "Log lines dropped because stdout could not take them (full disk, blocked reader)",
      logLinesDropped,
    );
  }

  setFailoverState(state: FailoverState | "IDLE"): void {
    for (const s of [...FAILOVER_STATES, "IDLE"]) this.failoverState.set({ state: s }, s === state ? 1 : 0);
  }

  setActiveStack(stack: StackName): void {
    for (const s of STACK_NAMES) this.activeStack.set({ stack: s }, s === stack ? 1 : 0);
  }

  recordProbe(stack: StackName, probe: string, ok: boolean, durationMs: number): void {
    this.probeUp.set({ stack, probe }, ok ? 1 : 0);
    this.probes.inc({ stack, probe, result: ok ? "ok" : "failed" });
    this.probeDuration.observe({ stack, probe }, durationMs / 1000);
  }
}
