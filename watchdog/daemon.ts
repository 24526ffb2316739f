import Fastify, { type FastifyInstance } from "fastify";
import { HttpGuard, installHttpGuard, isLoopbackAddress, RefusalLogThrottle } from "../config/index.js";
import { otherStack, STACK_NAMES, type StackName, type WatchdogConfig } from "./config.js";
import { createContext, type ContextOptions, type WatchdogContext } from "./context.js";
import { StaleGenerationError } from "./errors.js";
import { FailoverExecutor } from "./failover/executor.js";
import { PauseHook } from "./failover/pause-hook.js";
import type { FailoverRecord } from "./failover/states.js";
import { assessActive } from "./health/evaluate.js";
import { Hysteresis } from "./health/hysteresis.js";
import { observe, type Observation } from "./monitor.js";
import { probeLiveness, type LivenessProbe } from "./probes/liveness.js";
import { LeaseLostError } from "./state/store.js";
import { randomUUID } from "node:crypto";

export interface DaemonOptions extends ContextOptions {
  /** Overrides config.metrics (tests use port 0). */
  metricsPort?: number;
}

/**
 * The watchdog daemon: probes both stacks every interval, decides with hysteresis, runs (or recovers)
 * failovers through the durable executor, keeps the standby fenced, and serves /metrics.
 */
export class WatchdogDaemon {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private tickRunning: Promise<void> | null = null;
  private failoverRunning: Promise<unknown> | null = null;
  private metricsServer: FastifyInstance | undefined;
  private readonly startedAt = Date.now();
  private readonly watchingSince = new Map<string, number>();
  private readonly activeSilence: Hysteresis;
  private readonly stackHealth: Record<StackName, Hysteresis>;
  private lastActive: StackName;
  private liveness: LivenessProbe | null = null;
  private lastObservation: Observation | null = null;
  private lastReasons: string[] = [];
  private readonly alertedOnce = new Set<string>();
  metricsAddress: string | undefined;

  private constructor(private readonly ctx: WatchdogContext) {
    const m = ctx.config.monitor;
    this.activeSilence = new Hysteresis(m.failuresBeforeFailover, m.successesBeforeHealthy);
    this.stackHealth = { primary: new Hysteresis(m.failuresBeforeFailover, m.successesBeforeHealthy), backup: new Hysteresis(m.failuresBeforeFailover, m.successesBeforeHealthy) };
    this.lastActive = ctx.store.activeStack();
  }

  static async start(config: WatchdogConfig, opts: DaemonOptions = {}): Promise<WatchdogDaemon> {
    const ctx = await createContext(config, opts);
    const d = new WatchdogDaemon(ctx);
    ctx.metrics.setActiveStack(d.lastActive);
    ctx.metrics.setFailoverState(ctx.store.openFailover()?.state ?? "IDLE");
    if (config.metrics.enabled) await d.serveMetrics(opts.metricsPort ?? config.metrics.port);
    ctx.store.audit("daemon", `watchdog daemon started (pid ${process.pid})`, { activeStack: d.lastActive });
    ctx.log.info({ activeStack: d.lastActive, dataDir: config.dataDir, metrics: d.metricsAddress }, "watchdog started");
    d.schedule(0);
    return d;
  }

  get context(): WatchdogContext {
    return this.ctx;
  }

  /** Stops probing; waits (bounded) for a running failover to finish, then closes. */
  async stop(waitForFailoverMs = 30_000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tickRunning;
    if (this.failoverRunning) await Promise.race([this.failoverRunning, new Promise((r) => setTimeout(r, waitForFailoverMs))]);
    await this.metricsServer?.close();
    this.ctx.store.audit("daemon", "watchdog daemon stopped");
    await this.ctx.close();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.tickRunning = this.tick()
        .catch((err) => this.ctx.log.error({ err: (err as Error).message }, "watchdog tick failed"))
        .finally(() => {
          this.tickRunning = null;
          this.schedule(this.ctx.config.monitor.intervalMs);
        });
    }, delayMs);
  }

  /** One monitoring round. Public for tests. */
  async tick(): Promise<void> {
    const { config: cfg, store, metrics } = this.ctx;
    const silenceMs = cfg.monitor.signerSilenceSlots * cfg.chain.slotDurationMs;
    const obs = await observe(cfg, this.ctx.signers, (id) => this.watchingSince.get(id) ?? Date.now(), silenceMs);
    this.lastObservation = obs;
    this.trackSignerReachability(obs);
    this.recordMetrics(obs);
    await this.refreshLiveness();

    const active = store.activeStack();
    if (active !== this.lastActive) {
      // A failover (ours or an operator's) moved the active stack: judge the new one from scratch.
      this.lastActive = active;
      this.activeSilence.reset();
      this.watchingSince.set(cfg.stacks[active].signer, Date.now());
      metrics.setActiveStack(active);
    }
    this.watchStackHealth(obs, active);

    const open = store.openFailover();
    if (open) {
      if (!this.failoverRunning) this.tryRecover();
      this.writeStatus(obs, active, ["failover in progress"]);
      return;
    }
    if (this.failoverRunning) return;

    await this.keepStandbyFenced(obs, active);

    const assessment = assessActive(
      { service: obs.stacks[active].service, beacon: obs.stacks[active].beacon, witness: obs.stacks[active].witness, ...(obs.stacks[active].signerError ? { signerError: obs.stacks[active].signerError } : {}) },
      this.liveness,
      cfg.monitor,
    );
    const reading = assessment.inconclusive ? this.activeSilence.inconclusive() : this.activeSilence.observe(assessment.bad);
    metrics.consecutiveBad.set(reading.consecutiveBad);
    this.lastReasons = assessment.reasons;
    if (assessment.inconclusive) this.alertOnce(`inconclusive:${assessment.reasons[0]}`, "warning", "active_unobservable", `cannot judge ${active}: ${assessment.reasons.join("; ")}`, active);
    else this.alertedOnce.forEach((k) => k.startsWith("inconclusive:") && this.alertedOnce.delete(k));
    this.writeStatus(obs, active, assessment.reasons, reading.consecutiveBad);

    if (reading.state !== "down") return;
    const reason = `${active} failing for ${reading.consecutiveBad} checks: ${assessment.reasons.join("; ")}`;
    if (active !== "primary") {
      this.alertOnce(`failback-needed:${active}`, "critical", "active_down_no_auto", `${reason}; automatic failover only runs primary → backup: run \`vigil failback\``, active);
      return;
    }
    if (!cfg.failover.automatic) {
      this.alertOnce("auto-disabled", "critical", "active_down_manual", `${reason}; automatic failover is disabled: run \`vigil failover\``, active);
      return;
    }
    const lastUnsuccessful = store.lastUnsuccessfulAutoAt();
    if (lastUnsuccessful !== null && Date.now() - lastUnsuccessful < cfg.failover.refusedRetryMs) return;
    this.runFailover((ex) => ex.start("primary", "backup", "auto", reason));
  }

  /** The standby client must never be enabled outside a failover (a reset signer enables every client). */
  private async keepStandbyFenced(obs: Observation, active: StackName): Promise<void> {
    const standby = otherStack(active);
    const s = obs.stacks[standby];
    if (!s.client?.enabled) return;
    const { config: cfg, store, alerter } = this.ctx;
    const activeEnabled = obs.stacks[active].client?.enabled === true;
    const signer = this.ctx.signers.get(cfg.stacks[standby].signer)!;
    const gen = store.allocateGeneration([obs.signers[signer.id]?.generation ?? 0], "fence", `standby ${standby} (${s.clientId}) found enabled at signer ${signer.id}; fencing it`, { stack: standby });
    try {
      await signer.disable(s.clientId, gen, `standby-fence-${randomUUID()}`);
      alerter.send({
        level: activeEnabled ? "critical" : "warning",
        event: "standby_fenced",
        message: `standby ${standby} client ${s.clientId} was enabled at signer ${signer.id}${activeEnabled ? " while the active client was too" : ""}; fenced (generation ${gen})`,
        stack: standby,
      });
    } catch (err) {
      // Stale means a newer decision exists (an operator, a failover in another process): next round re-reads.
      const level = err instanceof StaleGenerationError ? "warning" : "critical";
      alerter.send({ level, event: "standby_fence_failed", message: `could not fence standby ${s.clientId}: ${(err as Error).message}`, stack: standby });
    }
  }

  private tryRecover(): void {
    const rec = this.ctx.store.claimAbandoned(this.ctx.lease, this.ctx.config.failover.leaseMs);
    if (!rec) return;
    this.runFailover((ex) => ex.recover(rec));
  }

  private runFailover(fn: (ex: FailoverExecutor) => Promise<{ record: FailoverRecord }>): void {
    const ex = new FailoverExecutor({
      config: this.ctx.config,
      store: this.ctx.store,
      signers: this.ctx.signers,
      clock: this.ctx.clock,
      alerter: this.ctx.alerter,
      log: this.ctx.log,
      lease: this.ctx.lease,
      metrics: this.ctx.metrics,
      pause: PauseHook.fromEnv(this.ctx.config.dataDir, (p) => this.ctx.log.warn({ point: p }, "paused by VIGIL_WATCHDOG_PAUSE_AT (test hook)")),
    });
    this.failoverRunning = fn(ex)
      .then(({ record }) => this.ctx.log.info({ failoverId: record.id, state: record.state, outcome: record.outcomeCode }, "failover finished"))
      .catch((err) => {
        if (err instanceof LeaseLostError) this.ctx.log.warn(err.message);
        else this.ctx.log.error({ err: (err as Error).message }, "failover stopped; it will be recovered");
      })
      .finally(() => {
        this.failoverRunning = null;
        this.activeSilence.reset();
      });
  }

  private trackSignerReachability(obs: Observation): void {
    for (const [id, s] of Object.entries(obs.signers)) {
      if (!s.reachable) {
        this.watchingSince.delete(id);
        this.alertOnce(`signer-down:${id}`, "critical", "signer_unreachable", `signer ${id} admin API unreachable: ${s.error}`);
      } else {
        if (!this.watchingSince.has(id)) this.watchingSince.set(id, obs.at);
        if (this.alertedOnce.delete(`signer-down:${id}`)) this.ctx.alerter.send({ level: "info", event: "signer_reachable", message: `signer ${id} admin API reachable again` });
      }
    }
  }

  private watchStackHealth(obs: Observation, active: StackName): void {
    for (const name of STACK_NAMES) {
      const s = obs.stacks[name];
      const bad = !s.beaconOk || (name === active && s.service.state === "inactive");
      const r = this.stackHealth[name].observe(bad);
      this.ctx.metrics.stackHealthy.set({ stack: name }, r.state === "up" ? 1 : 0);
      if (!r.changed) continue;
      const what = [s.beaconReasons.join("; "), name === active && s.service.state === "inactive" ? `service ${s.service.detail}` : ""].filter(Boolean).join("; ");
      if (r.state === "down") {
        this.ctx.alerter.send({
          level: name === active ? "warning" : "critical",
          event: name === active ? "active_degraded" : "standby_unhealthy",
          message: name === active ? `${name} stack degraded: ${what}` : `${name} stack unhealthy (a failover to it would be refused): ${what}`,
          stack: name,
        });
      } else {
        this.ctx.alerter.send({ level: "info", event: "stack_healthy", message: `${name} stack healthy again`, stack: name });
      }
    }
  }

  /** Liveness of the previous epoch, asked once per epoch (a slot into the next, so inclusion had time). */
  private async refreshLiveness(): Promise<void> {
    const clock = this.ctx.clock;
    const epoch = clock.currentEpoch() - 1;
    if (epoch < 0 || this.liveness?.epoch === epoch) return;
    const cfg = this.ctx.config;
    for (const name of [this.lastActive, otherStack(this.lastActive)]) {
      const r = await probeLiveness(cfg.stacks[name].beaconNodeUrl, epoch, cfg.validatorIndices, cfg.monitor.probeTimeoutMs);
      this.ctx.metrics.recordProbe(name, "liveness", r.ok, 0);
      if (r.ok) {
        this.liveness = r;
        if (r.notLive.length > 0) this.ctx.alerter.send({ level: "warning", event: "validators_not_live", message: `${r.notLive.length} of ${cfg.validatorIndices.length} validator(s) not live in epoch ${epoch}` });
        return;
      }
    }
  }

  private recordMetrics(obs: Observation): void {
    const m = this.ctx.metrics;
    for (const name of STACK_NAMES) {
      const s = obs.stacks[name];
      m.recordProbe(name, "service", s.service.state === "active", s.service.durationMs);
      m.recordProbe(name, "beacon", s.beaconOk, s.beacon.durationMs);
      const so = obs.signers[s.signerId];
      m.recordProbe(name, "signer", so?.reachable === true && s.client !== undefined, so?.durationMs ?? 0);
      if (s.client) {
        m.clientEnabled.set({ client: s.clientId }, s.client.enabled ? 1 : 0);
        if (s.client.lastRequestAt) m.lastRequestAge.set({ client: s.clientId }, (obs.at - Date.parse(s.client.lastRequestAt)) / 1000);
      }
    }
  }

  private writeStatus(obs: Observation, active: StackName, reasons: string[], consecutiveBad = 0): void {
    const snapshot = {
      at: obs.at,
      activeStack: active,
      consecutiveBad,
      reasons,
      liveness: this.liveness,
      stacks: Object.fromEntries(
        STACK_NAMES.map((n) => {
          const s = obs.stacks[n];
          return [n, { service: s.service.state, serviceDetail: s.service.detail, beaconOk: s.beaconOk, beaconReasons: s.beaconReasons, witness: s.witness, healthy: this.stackHealth[n].current === "up" }];
        }),
      ),
    };
    try {
      this.ctx.store.writeDaemonStatus(this.startedAt, snapshot);
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, "could not write daemon status");
    }
  }

  private alertOnce(key: string, level: "info" | "warning" | "critical", event: string, message: string, stack?: string): void {
    if (this.alertedOnce.has(key)) return;
    this.alertedOnce.add(key);
    this.ctx.alerter.send({ level, event, message, ...(stack ? { stack } : {}) });
  }

  private async serveMetrics(port: number): Promise<void> {
    const app = Fastify({ logger: false });
    // Before the routes: no web page may read the daemon's state (DNS rebinding, cross-origin requests).
    const { host, hostAllowlist, allowedOrigins } = this.ctx.config.metrics;
    const guard = new HttpGuard({ hostAllowlist, allowedOrigins }, host);
    if (guard.onlyDefaults && !isLoopbackAddress(host)) {
      this.ctx.log.warn({ host }, "metrics listener is not on loopback but metrics.hostAllowlist is empty: only loopback Host names and the listen address are accepted");
    }
    const throttle = new RefusalLogThrottle();
    installHttpGuard(app, guard, (refusal) => {
      this.ctx.metrics.httpRefusals.inc({ code: refusal.code });
      const log = throttle.note(refusal.code);
      if (log) this.ctx.log.warn({ code: refusal.code, notLoggedSince: log.suppressed }, refusal.message);
    });
    const registry = this.ctx.metrics.registry;
    app.get("/metrics", async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
    app.get("/healthz", async () => ({ ok: true, lastObservationAt: this.lastObservation?.at ?? null, reasons: this.lastReasons }));
    this.metricsAddress = await app.listen({ host: this.ctx.config.metrics.host, port });
    this.metricsServer = app;
  }
}

export function startWatchdog(config: WatchdogConfig, opts?: DaemonOptions): Promise<WatchdogDaemon> {
  return WatchdogDaemon.start(config, opts);
}
