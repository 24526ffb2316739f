import { otherStack, STACK_NAMES, type StackName, type WatchdogConfig } from "./config.js";
import { createContext, type ContextOptions, type WatchdogContext } from "./context.js";
import { FailoverExecutor } from "./failover/executor.js";
import { divergentDatabases } from "./failover/instance-fence.js";
import { PauseHook } from "./failover/pause-hook.js";
import type { FailoverRecord } from "./failover/states.js";
import { assessActive, type ActiveAssessment } from "./health/evaluate.js";
import { Hysteresis, type HysteresisReading } from "./health/hysteresis.js";
import { startMetricsListener, type DaemonHealth, type MetricsListener } from "./metrics-listener.js";
import { observe, type Observation } from "./monitor.js";
import { probeLiveness, type LivenessProbe } from "./probes/liveness.js";
import { fenceEnabledStandby } from "./standby-fence.js";
import { LeaseLostError } from "./state/store.js";

export interface DaemonOptions extends ContextOptions {
  /** Overrides config.metrics (tests use port 0). */
  metricsPort?: number;
}

/**
 * The watchdog daemon: probes both stacks every interval, decides with hysteresis, runs (or recovers)
 * failovers through the durable executor, keeps the standby fenced, and serves /metrics.
 *
 * start: open the state (context) → publish the initial metrics → start the metrics listener → start the
 * monitoring loop. Each round of the loop: observe → follow the active stack → watch both stacks' health →
 * either leave an open failover to its executor (recovering it if abandoned), or fence an enabled standby,
 * judge the active stack and, when it is down, act as the failover policy says. stop undoes start in reverse.
 */
export class WatchdogDaemon {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private roundRunning: Promise<void> | null = null;
  private failoverRunning: Promise<unknown> | null = null;
  private metricsListener: MetricsListener | undefined;
  private readonly startedAt = Date.now();
  private readonly watchingSince = new Map<string, number>();
  /** Rounds in a row in which the signer saw nothing from the active client (assessActive: only silence is bad; an inconclusive round breaks the streak). Its "down" triggers the failover policy. */
  private readonly activeSilence: Hysteresis;
  private readonly stackHealth: Record<StackName, Hysteresis>;
  private lastActive: StackName;
  private liveness: LivenessProbe | null = null;
  /** The epoch whose instance databases were last compared (checkInstanceDatabases). */
  private databasesCheckedAtEpoch = -1;
  private lastObservation: Observation | null = null;
  private lastReasons: string[] = [];
  private readonly alertedOnce = new Set<string>();

  private constructor(private readonly ctx: WatchdogContext) {
    const m = ctx.config.monitor;
    this.activeSilence = new Hysteresis(m.failuresBeforeFailover, m.successesBeforeHealthy);
    this.stackHealth = {
      primary: new Hysteresis(m.failuresBeforeFailover, m.successesBeforeHealthy),
      backup: new Hysteresis(m.failuresBeforeFailover, m.successesBeforeHealthy),
    };
    this.lastActive = ctx.store.activeStack();
  }

  static async start(config: WatchdogConfig, opts: DaemonOptions = {}): Promise<WatchdogDaemon> {
    const ctx = await createContext(config, opts);
    const d = new WatchdogDaemon(ctx);
    d.publishInitialMetrics();
    if (config.metrics.enabled) d.metricsListener = await startMetricsListener(ctx, opts.metricsPort ?? config.metrics.port, () => d.health());
    ctx.store.audit("daemon", `watchdog daemon started (pid ${process.pid})`, { activeStack: d.lastActive });
    ctx.log.info({ activeStack: d.lastActive, dataDir: config.dataDir, metrics: d.metricsAddress }, "watchdog started");
    d.scheduleRound(0);
    return d;
  }

  get context(): WatchdogContext {
    return this.ctx;
  }

  /** Where /metrics and /healthz are served; undefined when metrics are disabled. */
  get metricsAddress(): string | undefined {
    return this.metricsListener?.address;
  }

  /** Stops probing; waits (bounded) for a running failover to finish, then closes. */
  async stop(waitForFailoverMs = 30_000): Promise<void> {
    await this.stopMonitoringLoop();
    await this.waitForRunningFailover(waitForFailoverMs);
    await this.metricsListener?.close();
    this.ctx.store.audit("daemon", "watchdog daemon stopped");
    this.ctx.log.info("watchdog stopped");
    await this.ctx.close();
  }

  private publishInitialMetrics(): void {
    this.ctx.metrics.setActiveStack(this.lastActive);
    this.ctx.metrics.setFailoverState(this.ctx.store.openFailover()?.state ?? "IDLE");
  }

  private health(): DaemonHealth {
    return { lastObservationAt: this.lastObservation?.at ?? null, reasons: this.lastReasons };
  }

  // --- the monitoring loop: one round at a time, the next scheduled an interval after the last one ended ---

  private scheduleRound(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.roundRunning = this.monitoringRound()
        .then(() => this.ctx.metrics.heartbeat.set(Date.now() / 1000)) // only a round that completed: a failing loop goes stale
        .catch((err) => this.ctx.log.error({ err: (err as Error).message }, "watchdog tick failed"))
        .finally(() => {
          this.roundRunning = null;
          this.scheduleRound(this.ctx.config.monitor.intervalMs);
        });
    }, delayMs);
  }

  private async stopMonitoringLoop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.roundRunning;
  }

  private async waitForRunningFailover(maxMs: number): Promise<void> {
    if (this.failoverRunning) await Promise.race([this.failoverRunning, new Promise((r) => setTimeout(r, maxMs))]);
  }

  private async monitoringRound(): Promise<void> {
    const obs = await this.observeStacks();
    const active = this.followActiveStack();
    this.watchStackHealth(obs, active);

    if (this.ctx.store.openFailover()) {
      if (!this.failoverRunning) this.recoverAbandonedFailover();
      this.writeStatus(obs, active, ["failover in progress"]);
      return;
    }
    if (this.failoverRunning) return;

    await fenceEnabledStandby(this.ctx, obs, active);
    const { assessment, reading } = this.judgeActive(obs, active);
    if (reading.state === "down") this.actOnActiveDown(active, `${active} failing for ${reading.consecutiveBad} checks: ${assessment.reasons.join("; ")}`);
  }

  /** Probes both stacks and every signer; liveness of the last epoch is asked once per epoch. */
  private async observeStacks(): Promise<Observation> {
    const cfg = this.ctx.config;
    const silenceMs = cfg.monitor.signerSilenceSlots * cfg.chain.slotDurationMs;
    const obs = await observe(cfg, this.ctx.signers, (id) => this.watchingSince.get(id) ?? Date.now(), silenceMs);
    this.lastObservation = obs;
    this.trackSignerReachability(obs);
    this.recordMetrics(obs);
    await this.refreshLiveness();
    await this.checkInstanceDatabases();
    return obs;
  }

  /**
   * Once per epoch: the instances of each multi-instance signer must report one database. A fence read back at
   * some instances counts for one not reached only because they share it (watchdog/docs/README.md).
   */
  private async checkInstanceDatabases(): Promise<void> {
    const epoch = this.ctx.clock.currentEpoch();
    if (this.databasesCheckedAtEpoch === epoch) return;
    this.databasesCheckedAtEpoch = epoch;
    for (const signer of this.ctx.signers.values()) {
      if (signer.instances.length < 2) continue;
      const divergent = divergentDatabases(await signer.each((i) => i.slashingDb()));
      const key = `instances-diverge:${signer.id}`;
      if (divergent)
        this.alertOnce(
          key,
          "critical",
          "signer_instances_diverge",
          `signer ${signer.id}: its instances report different slashing databases (${divergent}); a fence through one does not hold at the others`,
        );
      else this.alertedOnce.delete(key);
    }
  }

  /** A failover (ours or an operator's) that moved the active stack: judge the new one from scratch. */
  private followActiveStack(): StackName {
    const active = this.ctx.store.activeStack();
    if (active !== this.lastActive) {
      this.lastActive = active;
      this.activeSilence.reset();
      this.watchingSince.set(this.ctx.config.stacks[active].signer, Date.now());
      this.ctx.metrics.setActiveStack(active);
    }
    return active;
  }

  /** Assesses the active stack, feeds the hysteresis, alerts when it cannot be judged, and writes the status. */
  private judgeActive(obs: Observation, active: StackName): { assessment: ActiveAssessment; reading: HysteresisReading } {
    const s = obs.stacks[active];
    const assessment = assessActive(
      { service: s.service, beacon: s.beacon, witness: s.witness, ...(s.signerError ? { signerError: s.signerError } : {}) },
      this.liveness,
      this.ctx.config.monitor,
    );
    const reading = assessment.inconclusive ? this.activeSilence.inconclusive() : this.activeSilence.observe(assessment.bad);
    this.ctx.metrics.consecutiveBad.set(reading.consecutiveBad);
    this.lastReasons = assessment.reasons;
    if (assessment.inconclusive)
      this.alertOnce(
        `inconclusive:${assessment.reasons[0]}`,
        "warning",
        "active_unobservable",
        `cannot judge ${active}: ${assessment.reasons.join("; ")}`,
        active,
      );
    else {
      for (const k of this.alertedOnce) if (k.startsWith("inconclusive:")) this.alertedOnce.delete(k);
    }
    this.writeStatus(obs, active, assessment.reasons, reading.consecutiveBad);
    return { assessment, reading };
  }

  /** The failover policy: automatic only primary → backup, only when enabled, not again too soon after one that did not succeed. */
  private actOnActiveDown(active: StackName, reason: string): void {
    const cfg = this.ctx.config;
    if (active !== "primary") {
      this.alertOnce(
        `failback-needed:${active}`,
        "critical",
        "active_down_no_auto",
        `${reason}; automatic failover only runs primary → backup: run \`vigil failback\``,
        active,
      );
      return;
    }
    if (!cfg.failover.automatic) {
      this.alertOnce("auto-disabled", "critical", "active_down_manual", `${reason}; automatic failover is disabled: run \`vigil failover\``, active);
      return;
    }
    const lastUnsuccessful = this.ctx.store.lastUnsuccessfulAutoAt();
    if (lastUnsuccessful !== null && Date.now() - lastUnsuccessful < cfg.failover.refusedRetryMs) return;
    this.runFailover((ex) => ex.start("primary", "backup", "auto", reason));
  }

  /** Takes over an open failover whose executor is gone (lease expired, or its process died on this host) and carries it on. */
  private recoverAbandonedFailover(): void {
    const rec = this.ctx.store.claimAbandoned(this.ctx.lease, this.ctx.config.failover.leaseMs);
    if (!rec) return;
    this.runFailover((ex) => ex.recover(rec));
  }

  private runFailover(fn: (ex: FailoverExecutor) => Promise<{ record: FailoverRecord }>): void {
    this.failoverRunning = fn(this.newExecutor())
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

  private newExecutor(): FailoverExecutor {
    return new FailoverExecutor({
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
  }

  private trackSignerReachability(obs: Observation): void {
    for (const [id, s] of Object.entries(obs.signers)) {
      if (!s.reachable) {
        this.watchingSince.delete(id);
        this.alertOnce(`signer-down:${id}`, "critical", "signer_unreachable", `signer ${id} admin API unreachable: ${s.error}`);
      } else {
        if (!this.watchingSince.has(id)) this.watchingSince.set(id, obs.at);
        if (this.alertedOnce.delete(`signer-down:${id}`))
          this.ctx.alerter.send({ level: "info", event: "signer_reachable", message: `signer ${id} admin API reachable again` });
      }
      // One instance of several down: the signer still serves (HAProxy routes around it), but a fence is then
      // read back only where it can be (watchdog/docs/README.md).
      if (s.instances.length < 2) continue;
      for (const i of s.instances) {
        const key = `signer-instance-down:${id}:${i.url}`;
        if (!i.reachable) this.alertOnce(key, "warning", "signer_instance_unreachable", `signer ${id} instance ${i.url} admin API unreachable: ${i.error}`);
        else if (this.alertedOnce.delete(key))
          this.ctx.alerter.send({ level: "info", event: "signer_instance_reachable", message: `signer ${id} instance ${i.url} admin API reachable again` });
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
      const what = [s.beaconReasons.join("; "), name === active && s.service.state === "inactive" ? `service ${s.service.detail}` : ""]
        .filter(Boolean)
        .join("; ");
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
        if (r.notLive.length > 0)
          this.ctx.alerter.send({
            level: "warning",
            event: "validators_not_live",
            message: `${r.notLive.length} of ${cfg.validatorIndices.length} validator(s) not live in epoch ${epoch}`,
          });
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
          return [
            n,
            {
              service: s.service.state,
              serviceDetail: s.service.detail,
              beaconOk: s.beaconOk,
              beaconReasons: s.beaconReasons,
              witness: s.witness,
              healthy: this.stackHealth[n].current === "up",
            },
          ];
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
}

export function startWatchdog(config: WatchdogConfig, opts?: DaemonOptions): Promise<WatchdogDaemon> {
  return WatchdogDaemon.start(config, opts);
}
