import type { Alerter } from "../alerts/alerter.js";
import type { ClientView } from "../../admin-api/index.js";
import type { ChainClock } from "../chain-clock.js";
import type { StackConfig, StackName, WatchdogConfig } from "../config.js";
import { SignerAdminError, StaleGenerationError } from "../errors.js";
import type { Logger } from "../log.js";
import type { WatchdogMetrics } from "../metrics.js";
import { describeFailure, runCommand, type CommandResult } from "../probes/command.js";
import { withSignerRetry, type SignerAdminClient } from "../signer-client.js";
import { LeaseLostError, type LeaseHolder, type WatchdogStore } from "../state/store.js";
import { ContinuityError, ensureContinuity, type ContinuityResult } from "./continuity.js";
import { describeInstances, fenceHolds, setClientAtEveryInstance, type SetClientOptions } from "./instance-fence.js";
import { proveSharedDatabase } from "./shared-database.js";
import { PauseHook } from "./pause-hook.js";
import { checkPreconditions, type Precondition } from "./preconditions.js";
import { isTerminal, recoveryAction, type FailoverProgress, type FailoverRecord, type FailoverState, type FailoverTrigger } from "./states.js";

export interface ExecutorDeps {
  config: WatchdogConfig;
  store: WatchdogStore;
  signers: ReadonlyMap<string, SignerAdminClient>;
  clock: ChainClock;
  alerter: Alerter;
  log: Logger;
  lease: LeaseHolder;
  metrics?: WatchdogMetrics;
  pause?: PauseHook;
  run?: (argv: readonly string[], timeoutMs: number) => Promise<CommandResult>;
  sleep?: (ms: number) => Promise<void>;
  /** Called after each committed transition (the CLI prints them). */
  onTransition?: (rec: FailoverRecord, note: string) => void;
}

export interface FailoverOutcome {
  record: FailoverRecord;
  preconditions?: Precondition[];
}

/** Ends a step early with a terminal state; thrown inside a step, turned into a transition by drive(). */
class StepAbort extends Error {
  constructor(
    readonly to: "FAILED" | "ROLLED_BACK",
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs one failover through the durable state machine. Every transition is committed (with the lease check)
 * before its step acts; steps after the fence is confirmed are idempotent so a successor can resume them.
 * Invariant kept throughout: the new client is enabled only after the old one is read back disabled, and the
 * old one is re-enabled only by a rollback from FENCING, only if it was disabled with this failover's generation.
 */
export class FailoverExecutor {
  private readonly run: NonNullable<ExecutorDeps["run"]>;
  private readonly sleep: NonNullable<ExecutorDeps["sleep"]>;
  private readonly pause: PauseHook;
  private leaseLost = false;

  constructor(private readonly d: ExecutorDeps) {
    this.run = d.run ?? runCommand;
    this.sleep = d.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.pause = d.pause ?? new PauseHook(undefined, d.config.dataDir);
  }

  /** Opens a failover `from` → `to` and drives it to a terminal state. */
  async start(from: StackName, to: StackName, trigger: FailoverTrigger, reason: string): Promise<FailoverOutcome> {
    const cfg = this.d.config;
    let rec = this.d.store.createFailover({ from, to, trigger, reason }, this.d.lease, cfg.failover.leaseMs);
    this.d.metrics?.setFailoverState("PRECONDITIONS");
    this.d.alerter.send({
      level: "warning",
      event: "failover_started",
      message: `${trigger} failover ${from} → ${to}: ${reason}`,
      failoverId: rec.id,
      stack: from,
    });
    return this.withLease(rec, async () => {
      await this.pause.at("PRECONDITIONS");
      const pre = await checkPreconditions(cfg, this.stack(from), this.stack(to), this.d.signers);
      const failed = pre.filter((p) => !p.ok);
      if (failed.length > 0) {
        const msg = failed.map((p) => `${p.name}: ${p.detail}`).join("; ");
        rec = this.transition(rec.id, this.d.lease, "PRECONDITIONS", "REFUSED", msg, { outcome: { code: "PRECONDITIONS_FAILED", message: msg } });
        this.finished(rec);
        return { record: rec, preconditions: pre };
      }
      let generation: number;
      try {
        generation = await this.allocateGeneration(rec);
      } catch (err) {
        const message = `cannot allocate a generation: ${(err as Error).message}`;
        rec = this.transition(rec.id, this.d.lease, "PRECONDITIONS", "ROLLED_BACK", message, { outcome: { code: errorCode(err), message } });
        this.finished(rec);
        return { record: rec, preconditions: pre };
      }
      rec = this.transition(rec.id, this.d.lease, "PRECONDITIONS", "FENCING", `preconditions hold; generation ${generation}`, { generation });
      rec = await this.drive(rec);
      return { record: rec, preconditions: pre };
    });
  }

  /** Picks up a failover whose executor died, following the recovery rule of its state. */
  async recover(rec: FailoverRecord): Promise<FailoverOutcome> {
    const action = recoveryAction(rec.state);
    this.d.log.warn({ failoverId: rec.id, state: rec.state, action }, "recovering an interrupted failover");
    this.d.alerter.send({
      level: "warning",
      event: "failover_recovering",
      message: `failover ${rec.id} (${rec.from} → ${rec.to}) interrupted in ${rec.state}: ${action}`,
      failoverId: rec.id,
      state: rec.state,
    });
    return this.withLease(rec, async () => {
      if (action === "none") return { record: rec };
      if (action === "abandon") {
        rec = this.transition(rec.id, this.d.lease, "PRECONDITIONS", "ROLLED_BACK", "interrupted before anything was touched", {
          outcome: { code: "INTERRUPTED", message: "the watchdog stopped while checking preconditions; nothing was changed" },
        });
        this.finished(rec);
        return { record: rec };
      }
      if (action === "rollback") {
        rec = await this.rollbackFromFencing(rec, "INTERRUPTED", "the watchdog stopped before the fence was confirmed");
        this.finished(rec);
        return { record: rec };
      }
      rec = this.d.store.recordProgress(
        rec.id,
        this.d.lease,
        rec.state,
        { resumedAt: [...(rec.progress.resumedAt ?? []), Date.now()] },
        `resuming in ${rec.state}`,
      );
      return { record: await this.drive(rec) };
    });
  }

  // --- the steps ----------------------------------------------------------------------------------------

  private async drive(rec: FailoverRecord): Promise<FailoverRecord> {
    while (!isTerminal(rec.state)) {
      this.d.metrics?.setFailoverState(rec.state);
      try {
        switch (rec.state) {
          case "FENCING":
            rec = await this.fence(rec);
            break;
          case "DRAINING":
            rec = await this.drain(rec);
            break;
          case "CONTINUITY":
            rec = await this.continuity(rec);
            break;
          case "ACTIVATING":
            rec = await this.activate(rec);
            break;
          case "VERIFYING":
            rec = await this.verify(rec);
            break;
          default:
            throw new Error(`drive() cannot run state ${rec.state}`);
        }
      } catch (err) {
        if (err instanceof LeaseLostError) throw err;
        const abort = err instanceof StepAbort ? err : new StepAbort("FAILED", errorCode(err), (err as Error).message);
        if (rec.state === "FENCING") rec = await this.rollbackFromFencing(rec, abort.code, abort.message);
        else rec = this.transition(rec.id, this.d.lease, rec.state, "FAILED", abort.message, { outcome: { code: abort.code, message: abort.message } });
      }
    }
    this.finished(rec);
    return rec;
  }

  /**
   * FENCING: disable the old client with our generation and read it back at every instance of its signer.
   * Confirmed → DRAINING. An instance not reached counts as fenced only when the instances reached share one
   * PostgreSQL fencing state (its release gate reads the same row); that is said in the note and alerted.
   */
  private async fence(rec: FailoverRecord): Promise<FailoverRecord> {
    const from = this.stack(rec.from);
    const signer = this.signer(from);
    const gen = rec.generation!;
    await this.pause.at("FENCING");
    const report = await setClientAtEveryInstance(signer, from.clientId, false, gen, decisionOf(rec), this.instanceOptions());
    if (!fenceHolds(report)) {
      throw new StepAbort("ROLLED_BACK", "FENCE_NOT_CONFIRMED", `${from.clientId} not confirmed fenced at signer ${signer.id}: ${describeInstances(report)}`);
    }
    const where = signer.instances.length > 1 || report.unreachable.length > 0 ? `; ${describeInstances(report)}` : "";
    if (report.unreachable.length > 0) {
      this.d.alerter.send({
        level: "warning",
        event: "fence_instance_unverified",
        message: `${from.clientId} fenced at signer ${signer.id} (generation ${gen}) but not read back at ${report.unreachable.map((u) => u.url).join(", ")}: the fence holds there through the shared PostgreSQL release gate; check those instances`,
        failoverId: rec.id,
        stack: from.name,
      });
    }
    await this.pause.at("FENCING:after");
    return this.transition(
      rec.id,
      this.d.lease,
      "FENCING",
      "DRAINING",
      `${from.clientId} disabled at signer ${signer.id} (generation ${gen}), read back${where}`,
      {
        progress: {
          fenceConfirmedAt: Date.now(),
          fenceInstances: { confirmed: report.confirmed, unreachable: report.unreachable.map((u) => u.url), sharedState: report.sharedState },
        },
      },
    );
  }

  /** DRAINING: stop the old service (best effort: the fence is what protects), wait for no request in flight. */
  private async drain(rec: FailoverRecord): Promise<FailoverRecord> {
    const cfg = this.d.config;
    const from = this.stack(rec.from);
    const signer = this.signer(from);
    await this.pause.at("DRAINING");
    const stop = await this.runService(from, "stop");
    rec = this.d.store.recordProgress(rec.id, this.d.lease, "DRAINING", { stopCommand: stop }, `stop command for ${from.name}: ${stop.detail}`);
    const deadline = Date.now() + cfg.failover.drainTimeoutMs;
    for (;;) {
      this.checkLease(rec);
      // Every instance reached: an instance not reached was fenced (or is held by the shared gate) and releases nothing.
      const views = await this.viewsAtInstances(signer, from.clientId);
      const enabled = views.find((v) => v.enabled);
      if (enabled)
        throw new StepAbort(
          "FAILED",
          "FENCE_LOST",
          `${from.clientId} was re-enabled at signer ${signer.id} (generation ${enabled.changedAtGeneration}): a newer decision exists`,
        );
      const inFlight = views.reduce((n, v) => n + v.inFlight, 0);
      if (inFlight === 0) break;
      if (Date.now() > deadline)
        throw new StepAbort("FAILED", "DRAIN_TIMEOUT", `${inFlight} request(s) of ${from.clientId} still in flight after ${cfg.failover.drainTimeoutMs} ms`);
      await this.sleep(50);
    }
    await this.pause.at("DRAINING:after");
    return this.transition(rec.id, this.d.lease, "DRAINING", "CONTINUITY", `no request of ${from.clientId} in flight`, { progress: { drainedAt: Date.now() } });
  }

  /** CONTINUITY: make the new signer's slashing protection cover what the old one signed. */
  private async continuity(rec: FailoverRecord): Promise<FailoverRecord> {
    const cfg = this.d.config;
    const from = this.stack(rec.from);
    const to = this.stack(rec.to);
    await this.pause.at("CONTINUITY");
    let knownPubkeys: string[] = [];
    if (from.signer !== to.signer) {
      // From every instance reached; none reached: the watermarks then cover every key the new database knows.
      const views = await this.signer(from).each((i) => i.client(from.clientId));
      knownPubkeys = [...new Set(views.flatMap((v) => (v.ok ? v.value.lastSigned.map((s) => s.pubkey) : [])))];
    }
    let result: ContinuityResult;
    try {
      result = await ensureContinuity({
        from: cfg.signers[from.signer]!,
        to: cfg.signers[to.signer]!,
        clock: this.d.clock,
        beaconUrl: to.beaconNodeUrl,
        validatorIndices: cfg.validatorIndices,
        knownPubkeys,
        ...(from.signer !== to.signer ? { proveShared: () => proveSharedDatabase(this.signer(from), this.signer(to)) } : {}),
        quietEpochs: cfg.failover.livenessQuietEpochs,
        probeTimeoutMs: cfg.monitor.probeTimeoutMs,
        sleep: this.sleep,
        shouldStop: () => this.checkLease(rec),
        onWatermarks: (epoch) => {
          rec = this.d.store.recordProgress(
            rec.id,
            this.d.lease,
            "CONTINUITY",
            { watermarkEpoch: epoch },
            `watermarks of signer ${to.signer} raised to epoch ${epoch}`,
          );
        },
        onLiveSeen: (epoch, live) =>
          this.d.alerter.send({
            level: "critical",
            event: "keys_live_after_fence",
            message: `${live.length} validator(s) still live on chain in epoch ${epoch} after ${from.name} was fenced; waiting`,
            failoverId: rec.id,
          }),
      });
    } catch (err) {
      if (err instanceof LeaseLostError) throw err;
      throw new StepAbort("FAILED", err instanceof ContinuityError ? err.code : "CONTINUITY_FAILED", `continuity: ${(err as Error).message}`);
    }
    await this.pause.at("CONTINUITY:after");
    return this.transition(rec.id, this.d.lease, "CONTINUITY", "ACTIVATING", result.detail, {
      progress: {
        continuity: { mode: result.mode, detail: result.detail, at: Date.now() },
        ...(result.watermarkEpoch !== undefined ? { watermarkEpoch: result.watermarkEpoch } : {}),
      },
    });
  }

  /** ACTIVATING: re-check the fence and that no newer decision exists, enable the new client, start its service. */
  private async activate(rec: FailoverRecord): Promise<FailoverRecord> {
    const from = this.stack(rec.from);
    const to = this.stack(rec.to);
    const fromSigner = this.signer(from);
    const toSigner = this.signer(to);
    const gen = rec.generation!;
    await this.pause.at("ACTIVATING");
    const fenced = await this.viewsAtInstances(fromSigner, from.clientId);
    if (fenced.some((v) => v.enabled))
      throw new StepAbort("FAILED", "FENCE_LOST", `${from.clientId} is enabled again at signer ${fromSigner.id}: refusing to activate ${to.clientId}`);
    const current = await this.highestGeneration(toSigner);
    if (current > gen) throw new StepAbort("FAILED", "SUPERSEDED", `signer ${toSigner.id} is at generation ${current} > ${gen}: a newer decision exists`);
    if (rec.progress.activationRequestedAt === undefined) {
      const before = await this.signerCall(() => toSigner.each((i) => i.client(to.clientId)));
      const signedBaselines = Object.fromEntries(before.flatMap((r) => (r.ok ? [[r.url, r.value.signed]] : [])));
      rec = this.d.store.recordProgress(rec.id, this.d.lease, "ACTIVATING", { activationRequestedAt: Date.now(), signedBaselines });
    }
    const report = await setClientAtEveryInstance(toSigner, to.clientId, true, gen, decisionOf(rec), this.instanceOptions());
    if (report.confirmed.length === 0)
      throw new StepAbort(
        "FAILED",
        "ACTIVATION_NOT_CONFIRMED",
        `signer ${toSigner.id} does not report ${to.clientId} enabled after enable: ${describeInstances(report)}`,
      );
    if (report.contrary.length > 0 || report.unreachable.length > 0) {
      // The safe direction: such an instance refuses the new client until it learns of the enable.
      this.d.alerter.send({
        level: "warning",
        event: "activation_instance_unverified",
        message: `${to.clientId} enabled at signer ${toSigner.id} (generation ${gen}), not confirmed at every instance: ${describeInstances(report)}`,
        failoverId: rec.id,
        stack: to.name,
      });
    }
    rec = this.d.store.recordProgress(
      rec.id,
      this.d.lease,
      "ACTIVATING",
      { activatedAt: rec.progress.activatedAt ?? Date.now() },
      `${to.clientId} enabled at signer ${toSigner.id}${toSigner.instances.length > 1 ? `; ${describeInstances(report)}` : ""}`,
    );
    const start = await this.runService(to, "start");
    await this.pause.at("ACTIVATING:after");
    return this.transition(rec.id, this.d.lease, "ACTIVATING", "VERIFYING", `${to.clientId} enabled (generation ${gen}); start command: ${start.detail}`, {
      progress: { startCommand: start },
      activeStack: to.name,
    });
  }

  /** VERIFYING: the new client must sign within verifySlots slots; alert either way. */
  private async verify(rec: FailoverRecord): Promise<FailoverRecord> {
    const cfg = this.d.config;
    const to = this.stack(rec.to);
    const signer = this.signer(to);
    await this.pause.at("VERIFYING");
    const requestedAt = rec.progress.activationRequestedAt ?? rec.progress.activatedAt ?? Date.now();
    // Per instance (each counts since its own start); a record from before instances kept one baseline.
    const baseline = (url: string, k: number) =>
      rec.progress.signedBaselines?.[url] ?? (k === 0 && rec.progress.signedBaseline !== undefined ? rec.progress.signedBaseline : Number.MAX_SAFE_INTEGER);
    const windowMs = cfg.failover.verifySlots * cfg.chain.slotDurationMs;
    const deadline = Date.now() + windowMs;
    for (;;) {
      this.checkLease(rec);
      const views = await signer.each((i) => i.client(to.clientId));
      for (const r of views) if (!r.ok) this.d.log.warn({ err: r.error.message }, "verify: signer instance not answering");
      const signed = views.flatMap((r, k) => {
        if (!r.ok) return [];
        const lastSigned = r.value.lastSignedAt ? Date.parse(r.value.lastSignedAt) : NaN;
        return r.value.signed > baseline(r.url, k) || lastSigned >= requestedAt ? [{ view: r.value, lastSigned }] : [];
      });
      const first = signed[0];
      if (first) {
        const { view, lastSigned } = first;
        const firstAt = Number.isFinite(lastSigned) ? lastSigned : Date.now();
        const ms = firstAt - (rec.progress.activatedAt ?? requestedAt);
        this.d.metrics?.activationToSignature.set(Math.max(0, ms) / 1000);
        return this.transition(rec.id, this.d.lease, "VERIFYING", "DONE", `${to.clientId} signed ${Math.max(0, ms)} ms after activation`, {
          progress: { firstSignatureAt: view.lastSignedAt ?? new Date(firstAt).toISOString(), activationToSignatureMs: Math.max(0, ms) },
          outcome: { code: "DONE", message: `${to.name} is active and signing` },
        });
      }
      if (Date.now() > deadline) {
        throw new StepAbort(
          "FAILED",
          "VERIFY_TIMEOUT",
          `${to.clientId} did not sign within ${cfg.failover.verifySlots} slot(s) of activation; ${rec.from} stays fenced`,
        );
      }
      await this.sleep(Math.min(100, cfg.chain.slotDurationMs / 4));
    }
  }

  /**
   * Rollback before the fence was confirmed: re-enable the old client only if it is disabled with exactly
   * this failover's generation (we did it, and nobody decided anything since). Anything else is left alone.
   */
  private async rollbackFromFencing(rec: FailoverRecord, code: string, why: string): Promise<FailoverRecord> {
    const from = this.stack(rec.from);
    const signer = this.signer(from);
    const gen = rec.generation;
    let reEnabled = false;
    let detail: string;
    // Every instance reached (none reached: stays FENCING, retried later); each one disabled by us is re-enabled
    // there (with a shared state the first call does it for all, the others are idempotent retries).
    const views = await this.signerCall(async () => {
      const r = await signer.each((i) => i.client(from.clientId));
      if (!r.some((v) => v.ok)) throw (r[0] as { error: Error }).error;
      return r;
    });
    const ours = gen === null ? [] : views.filter((r) => r.ok && !r.value.enabled && r.value.changedAtGeneration === gen);
    const reached = views.flatMap((r) => (r.ok ? [r.value] : []));
    if (gen !== null && ours.length > 0) {
      try {
        for (const r of ours) await this.signerCall(() => signer.instances.find((i) => i.url === r.url)!.enable(from.clientId, gen, decisionOf(rec)));
        reEnabled = true;
        detail = `${from.clientId} re-enabled (it was disabled by this failover, generation ${gen})`;
      } catch (err) {
        if (!(err instanceof StaleGenerationError)) throw err;
        detail = `${from.clientId} left disabled: the signer moved to generation ${err.currentGeneration}`;
      }
    } else {
      const other = reached.find((v) => !v.enabled);
      detail = !other
        ? `${from.clientId} was not disabled; nothing to undo`
        : `${from.clientId} disabled at generation ${other.changedAtGeneration}, not by this failover; left as is`;
    }
    const message = `${why}; ${detail}`;
    return this.transition(rec.id, this.d.lease, "FENCING", "ROLLED_BACK", message, {
      outcome: { code, message },
      progress: { rollback: { reEnabled, detail } },
    });
  }

  // --- helpers ------------------------------------------------------------------------------------------

  private transition(...args: Parameters<WatchdogStore["transition"]>): FailoverRecord {
    const rec = this.d.store.transition(...args);
    this.d.metrics?.setFailoverState(isTerminal(rec.state) ? "IDLE" : rec.state);
    this.d.onTransition?.(rec, args[4]);
    return rec;
  }

  private async allocateGeneration(rec: FailoverRecord): Promise<number> {
    const ids = [...new Set([this.stack(rec.from).signer, this.stack(rec.to).signer])];
    const gens = await Promise.all(ids.map((id) => this.highestGeneration(this.d.signers.get(id)!)));
    return Math.max(this.d.store.lastGeneration(), ...gens) + 1;
  }

  /** The highest generation any instance reached reports (instances without a shared state may differ). */
  private highestGeneration(signer: SignerAdminClient): Promise<number> {
    return this.signerCall(async () => {
      const r = await signer.each((i) => i.generation());
      const gens = r.flatMap((g) => (g.ok ? [g.value] : []));
      if (gens.length === 0) throw (r[0] as { error: Error }).error;
      return Math.max(...gens);
    });
  }

  /** The client at every instance reached; throws (retried) when none answers. */
  private viewsAtInstances(signer: SignerAdminClient, clientId: string): Promise<ClientView[]> {
    return this.signerCall(async () => {
      const r = await signer.each((i) => i.client(clientId));
      const views = r.flatMap((v) => (v.ok ? [v.value] : []));
      if (views.length === 0) throw (r[0] as { error: Error }).error;
      return views;
    });
  }

  private instanceOptions(): SetClientOptions {
    return {
      retry: (fn) => this.signerCall(fn),
      settleMs: Math.min(this.d.config.failover.signerRetryMs, 3_000),
      sleep: this.sleep,
    };
  }

  private async runService(stack: StackConfig, verb: "stop" | "start"): Promise<{ ok: boolean; detail: string; at: number }> {
    const argv = verb === "stop" ? stack.service.stopCommand : stack.service.startCommand;
    const r = await this.run(argv, stack.service.timeoutMs);
    const ok = r.exitCode === 0;
    const detail = ok ? "ok" : describeFailure(r);
    if (!ok)
      this.d.alerter.send({
        level: "warning",
        event: `service_${verb}_failed`,
        message: `${verb} command for ${stack.name} failed: ${detail}`,
        stack: stack.name,
      });
    return { ok, detail, at: Date.now() };
  }

  private signerCall<T>(fn: () => Promise<T>): Promise<T> {
    return withSignerRetry(this.d.config.failover.signerRetryMs, fn, this.sleep);
  }

  private stack(name: StackName): StackConfig {
    return this.d.config.stacks[name];
  }

  private signer(stack: StackConfig): SignerAdminClient {
    return this.d.signers.get(stack.signer)!;
  }

  private checkLease(rec: FailoverRecord): void {
    if (this.leaseLost) throw new LeaseLostError(rec.id);
  }

  /** Renews the lease while `fn` runs; a lost lease stops this executor at its next check. */
  private async withLease<T>(rec: FailoverRecord, fn: () => Promise<T>): Promise<T> {
    const leaseMs = this.d.config.failover.leaseMs;
    this.leaseLost = false;
    const timer = setInterval(
      () => {
        try {
          if (!this.d.store.renewLease(rec.id, this.d.lease, leaseMs)) this.leaseLost = true;
        } catch (err) {
          this.d.log.warn({ err: (err as Error).message }, "could not renew the failover lease");
        }
      },
      Math.max(100, Math.floor(leaseMs / 3)),
    );
    try {
      return await fn();
    } finally {
      clearInterval(timer);
    }
  }

  private finished(rec: FailoverRecord): void {
    this.d.metrics?.setFailoverState("IDLE");
    this.d.metrics?.failovers.inc({ trigger: rec.trigger, outcome: rec.state });
    const level = rec.state === "DONE" ? "info" : rec.state === "REFUSED" || rec.state === "ROLLED_BACK" ? "warning" : "critical";
    this.d.alerter.send({
      level,
      event: `failover_${rec.state.toLowerCase()}`,
      message: `failover ${rec.id} ${rec.from} → ${rec.to}: ${rec.state}${rec.outcomeMessage ? ` — ${rec.outcomeMessage}` : ""}`,
      failoverId: rec.id,
      state: rec.state,
      data: { generation: rec.generation, activationToSignatureMs: rec.progress.activationToSignatureMs },
    });
  }
}

function errorCode(err: unknown): string {
  if (err instanceof SignerAdminError) return err.code;
  return "STEP_FAILED";
}

export type { FailoverState, FailoverProgress };

/**
 * The decision id sent with every fence/activate call of a failover: the signer lets only this failover
 * retry at its generation, so a second watchdog that picked the same number is refused (409), never mixed in.
 * Stable across restarts, because a resumed failover keeps its record.
 */
function decisionOf(rec: FailoverRecord): string {
  return `failover-${rec.id}`;
}
