import readline from "node:readline/promises";
import { Command, InvalidArgumentError } from "commander";
import { EXIT_CODES, runDaemon as runServiceDaemon, type LogFormat, type LogTimestamp } from "../common/index.js";
import { positiveInt, withLogStyleOptions } from "./options.js";
import { action } from "./run.js";
import {
  checkPreconditions,
  createContext,
  describeInstances,
  describePlan,
  fenceHolds,
  FailoverExecutor,
  FailoverFailedError,
  FailoverRefusedError,
  relayCode,
  WatchdogError,
  loadWatchdogConfig,
  observe,
  otherStack,
  setClientAtEveryInstance,
  STACK_NAMES,
  startWatchdog,
  WatchdogStore,
  type FailoverRecord,
  type StackName,
  type WatchdogConfig,
  type WatchdogContext,
} from "../watchdog/index.js";
import { randomUUID } from "node:crypto";

// Operator commands. They work with or without the daemon running: each talks to the watchdog's state
// database (<dataDir>/watchdog.sqlite) and to the signers' admin APIs directly. A failover run from here
// holds the same lease a daemon would, so the two never run one concurrently (see watchdog/docs/README.md).

const DEFAULT_CONFIG = () => process.env.VIGIL_WATCHDOG_CONFIG ?? "/etc/vigil/watchdog.json";
const configOption = ["--config <file>", "watchdog config (JSON); default $VIGIL_WATCHDOG_CONFIG or /etc/vigil/watchdog.json"] as const;

export function watchdogCommands(): Command[] {
  const watchdog = new Command("watchdog").description("the failover watchdog daemon");
  withLogStyleOptions(
    watchdog
      .command("start")
      .description("run the watchdog: monitor both stacks, fail over primary → backup when the primary is down")
      .option(...configOption),
    { format: "log.format", timestamp: "log.timestamp" },
  ).action(
    action(async (opts: { config?: string; logFormat?: LogFormat; logTimestamp?: LogTimestamp }) => {
      const config = loadWatchdogConfig(opts.config ?? DEFAULT_CONFIG());
      if (opts.logFormat !== undefined) config.log.format = opts.logFormat;
      if (opts.logTimestamp !== undefined) config.log.timestamp = opts.logTimestamp;
      return runDaemon(config);
    }),
  );

  const status = new Command("status")
    .description("stacks, their health, which client is active, last signature per client, every signer instance, watchdog state")
    .option(...configOption)
    .option("--json", "machine-readable output", false)
    .action(action(async (opts: { config?: string; json: boolean }) => statusCommand(loadWatchdogConfig(opts.config ?? DEFAULT_CONFIG()), opts.json)));

  const failover = new Command("failover")
    .description("move signing to the other stack: fence, drain, continuity, activate, verify")
    .option(...configOption)
    .option("--to <stack>", "target stack (primary or backup); default the one not active", stackName)
    .option("--dry-run", "print the plan and the preconditions; change nothing", false)
    .option("--yes", "do not ask for confirmation", false)
    .action(
      action(async (opts: { config?: string; to?: StackName; dryRun: boolean; yes: boolean }) =>
        failoverCommand(loadWatchdogConfig(opts.config ?? DEFAULT_CONFIG()), opts.to, opts, "failover"),
      ),
    );

  const failback = new Command("failback")
    .description("move signing back to the primary stack (the same guarded procedure, reversed)")
    .option(...configOption)
    .option("--dry-run", "print the plan and the preconditions; change nothing", false)
    .option("--yes", "do not ask for confirmation", false)
    .action(
      action(async (opts: { config?: string; dryRun: boolean; yes: boolean }) =>
        failoverCommand(loadWatchdogConfig(opts.config ?? DEFAULT_CONFIG()), "primary", opts, "failback"),
      ),
    );

  const fence = new Command("fence")
    .description("disable a validator client at its signer now (with a new generation), read back at every instance; never re-enables anything")
    .argument("<client>", "client id (as in the signer's clients[] and the watchdog's stacks)")
    .option(...configOption)
    .option("--signer <id>", "signer to fence it at, if the client is not one of the stacks")
    .action(
      action(async (client: string, opts: { config?: string; signer?: string }) =>
        fenceCommand(loadWatchdogConfig(opts.config ?? DEFAULT_CONFIG()), client, opts.signer),
      ),
    );

  const history = new Command("history")
    .description("audit log: failovers, transitions, fences, daemon starts")
    .option(...configOption)
    .option("--json", "machine-readable output", false)
    .option("--limit <n>", "entries to show", positiveInt, 50)
    .action(action((opts: { config?: string; json: boolean; limit: number }) => historyCommand(loadWatchdogConfig(opts.config ?? DEFAULT_CONFIG()), opts)));

  return [watchdog, status, failover, failback, fence, history];
}

// --- watchdog start -------------------------------------------------------------------------------------

/** Under systemd (config/daemon.ts): READY=1 once started, WATCHDOG=1 while its state database answers, STOPPING=1 on SIGTERM. */
async function runDaemon(cfg: WatchdogConfig): Promise<void> {
  await runServiceDaemon({
    name: "watchdog",
    start: async () => {
      const daemon = await startWatchdog(cfg);
      return { daemon, close: () => daemon.stop() };
    },
    liveness: ({ daemon }) => void daemon.context.store.activeStack(), // a read from watchdog.sqlite
    readyStatus: ({ daemon }) => `watching; active stack: ${daemon.context.store.activeStack()}`,
    runningStatus: ({ daemon }) => `watching; active stack: ${daemon.context.store.activeStack()}`,
  });
}

// --- status ---------------------------------------------------------------------------------------------

async function statusCommand(cfg: WatchdogConfig, json: boolean): Promise<void> {
  const ctx = await createContext(cfg, { logLevel: "silent", clockNeeded: false });
  try {
    const [obs, databases] = await Promise.all([
      observe(cfg, ctx.signers, () => Date.now() - 1, cfg.monitor.signerSilenceSlots * cfg.chain.slotDurationMs),
      Promise.all([...ctx.signers.values()].map(async (s) => [s.id, await s.each((i) => i.slashingDb())] as const)),
    ]);
    const active = ctx.store.activeStack();
    const daemon = ctx.store.daemonStatus();
    const open = ctx.store.openFailover();
    const last = ctx.store.lastFailover();
    const stacks = Object.fromEntries(
      STACK_NAMES.map((n) => {
        const s = obs.stacks[n];
        const newest = s.client?.lastSigned.reduce<(typeof s.client.lastSigned)[number] | undefined>((a, b) => (!a || b.at > a.at ? b : a), undefined);
        return [
          n,
          {
            active: n === active,
            clientId: s.clientId,
            signer: s.signerId,
            client: s.client
              ? {
                  enabled: s.client.enabled,
                  changedAtGeneration: s.client.changedAtGeneration,
                  inFlight: s.client.inFlight,
                  lastRequestAt: s.client.lastRequestAt,
                  lastSignedAt: s.client.lastSignedAt,
                  signed: s.client.signed,
                  refused: s.client.refused,
                  lastSignature: newest ?? null,
                }
              : null,
            signerError: s.signerError ?? null,
            service: { state: s.service.state, detail: s.service.detail },
            beacon: {
              ok: s.beaconOk,
              reasons: s.beaconReasons,
              health: s.beacon.healthStatus,
              syncDistance: s.beacon.syncDistance,
              isSyncing: s.beacon.isSyncing,
              peers: s.beacon.peers,
            },
          },
        ];
      }),
    );
    const report = {
      activeStack: active,
      generation: {
        watchdog: ctx.store.lastGeneration(),
        signers: Object.fromEntries(Object.entries(obs.signers).map(([id, s]) => [id, s.generation ?? null])),
      },
      daemon: daemon ? { pid: daemon.pid, host: daemon.host, lastSeenMsAgo: Date.now() - daemon.updatedAt, snapshot: daemon.snapshot } : null,
      openFailover: open ? summarize(open) : null,
      lastFailover: last ? summarize(last) : null,
      stacks,
      signers: Object.fromEntries(
        databases.map(([id, dbs]) => [
          id,
          {
            instances: obs.signers[id]!.instances.map((i) => {
              const db = dbs.find((d) => d.url === i.url);
              return {
                url: i.url,
                reachable: i.reachable,
                generation: i.generation ?? null,
                error: i.error ?? null,
                slashingDb: db?.ok && db.value ? { backend: db.value.backend, historyId: db.value.historyId } : null,
              };
            }),
          },
        ]),
      ),
    };
    if (json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const lines: string[] = [];
    lines.push(
      `active stack: ${active}   watchdog generation: ${report.generation.watchdog}   signer generation(s): ${Object.entries(report.generation.signers)
        .map(([k, v]) => `${k}=${v ?? "?"}`)
        .join(" ")}`,
    );
    lines.push(
      daemon
        ? `daemon: pid ${daemon.pid} on ${daemon.host}, last check ${Math.round((Date.now() - daemon.updatedAt) / 1000)} s ago`
        : "daemon: never ran with this data dir",
    );
    lines.push(open ? `open failover: #${open.id} ${open.from} → ${open.to} in ${open.state} (generation ${open.generation ?? "-"})` : "open failover: none");
    if (last) lines.push(`last failover: #${last.id} ${last.from} → ${last.to} ${last.state}${last.outcomeMessage ? ` — ${last.outcomeMessage}` : ""}`);
    for (const n of STACK_NAMES) {
      const s = stacks[n]!;
      lines.push("");
      lines.push(`${n}${s.active ? " (active)" : ""}: client ${s.clientId} at signer ${s.signer}`);
      lines.push(
        s.client
          ? `  signer: ${s.client.enabled ? "ENABLED" : "fenced"} (generation ${s.client.changedAtGeneration}), in flight ${s.client.inFlight}, last request ${s.client.lastRequestAt ?? "never"}, last signed ${s.client.lastSignedAt ?? "never"}${s.client.lastSignature ? ` (${s.client.lastSignature.type} slot ${s.client.lastSignature.slot})` : ""}, signed ${s.client.signed}, refused ${s.client.refused}`
          : `  signer: ${s.signerError}`,
      );
      lines.push(`  service: ${s.service.state} (${s.service.detail})`);
      lines.push(
        `  beacon: ${s.beacon.ok ? "ok" : "NOT OK"}${s.beacon.ok ? `, sync distance ${s.beacon.syncDistance}, ${s.beacon.peers} peers` : `: ${s.beacon.reasons.join("; ")}`}`,
      );
    }
    lines.push("");
    for (const [id, sig] of Object.entries(report.signers)) {
      lines.push(`signer ${id}: ${sig.instances.length} instance(s)`);
      for (const i of sig.instances) {
        const db = i.slashingDb ? `${i.slashingDb.backend} database ${i.slashingDb.historyId}` : "database not reported";
        lines.push(`  ${i.url}: ${i.reachable ? `reachable, generation ${i.generation}, ${db}` : `UNREACHABLE: ${i.error}`}`);
      }
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await ctx.close();
  }
}

function summarize(r: FailoverRecord) {
  return {
    id: r.id,
    trigger: r.trigger,
    from: r.from,
    to: r.to,
    state: r.state,
    generation: r.generation,
    reason: r.reason,
    outcome: r.outcomeCode,
    message: r.outcomeMessage,
    startedAt: new Date(r.startedAt).toISOString(),
    endedAt: r.endedAt ? new Date(r.endedAt).toISOString() : null,
    activationToSignatureMs: r.progress.activationToSignatureMs ?? null,
  };
}

// --- failover / failback --------------------------------------------------------------------------------

async function failoverCommand(cfg: WatchdogConfig, target: StackName | undefined, opts: { dryRun: boolean; yes: boolean }, verb: string): Promise<void> {
  const ctx = await createContext(cfg, { logLevel: "silent" });
  try {
    const active = ctx.store.activeStack();
    const to = target ?? otherStack(active);
    const from = otherStack(to);
    const out = (s: string) => process.stdout.write(`${s}\n`);
    out(`${verb}: ${from} → ${to}${to === active ? ` (note: ${to} is already the active stack; the procedure is re-run)` : ""}`);
    for (const line of describePlan(cfg, cfg.stacks[from], cfg.stacks[to])) out(`  ${line}`);
    const open = ctx.store.openFailover();
    if (open)
      throw new FailoverRefusedError("FAILOVER_IN_PROGRESS", `failover #${open.id} (${open.from} → ${open.to}) is still ${open.state}; see \`vigil status\``);
    out("preconditions:");
    const pre = await checkPreconditions(cfg, cfg.stacks[from], cfg.stacks[to], ctx.signers);
    for (const p of pre) out(`  [${p.ok ? "ok" : "FAIL"}] ${p.name}: ${p.detail}`);
    const failed = pre.filter((p) => !p.ok);
    if (failed.length > 0) {
      if (!opts.dryRun) ctx.store.audit("operator", `${verb} ${from} → ${to} refused: ${failed.map((f) => f.name).join("; ")}`);
      throw new FailoverRefusedError("PRECONDITIONS_FAILED", `${verb} refused: ${failed.map((f) => `${f.name} (${f.detail})`).join("; ")}`);
    }
    if (opts.dryRun) {
      out("dry run: nothing was changed");
      return;
    }
    if (!opts.yes) await confirm(`${verb} ${from} → ${to}: fence ${cfg.stacks[from].clientId} and activate ${cfg.stacks[to].clientId}?`);
    const executor = newExecutor(ctx, (rec, note) => out(`  ${rec.state.padEnd(12)} ${note}`));
    const { record } = await executor.start(from, to, "operator", `operator ${verb} from the CLI`);
    await ctx.alerter.flush();
    if (record.state === "DONE") {
      out(`${verb} done: ${to} is active and signing (${record.progress.activationToSignatureMs ?? "?"} ms from activation to first signature)`);
      return;
    }
    if (record.state === "REFUSED") throw new FailoverRefusedError(relayCode(record.outcomeCode ?? "REFUSED"), `${verb} refused: ${record.outcomeMessage}`);
    throw new FailoverFailedError(
      relayCode(record.outcomeCode ?? "FAILED"),
      `${verb} ${record.state === "ROLLED_BACK" ? "rolled back" : "failed"}: ${record.outcomeMessage}`,
    );
  } finally {
    await ctx.close();
  }
}

function newExecutor(ctx: WatchdogContext, onTransition: (rec: FailoverRecord, note: string) => void): FailoverExecutor {
  return new FailoverExecutor({
    config: ctx.config,
    store: ctx.store,
    signers: ctx.signers,
    clock: ctx.clock,
    alerter: ctx.alerter,
    log: ctx.log,
    lease: ctx.lease,
    metrics: ctx.metrics,
    onTransition,
  });
}

async function confirm(question: string): Promise<void> {
  if (!process.stdin.isTTY) throw new WatchdogError("CONFIRMATION_REQUIRED", "not a terminal: pass --yes to proceed without confirmation", EXIT_CODES.usage);
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== "y" && answer !== "yes") throw new FailoverRefusedError("NOT_CONFIRMED", "not confirmed; nothing was changed");
  } finally {
    rl.close();
  }
}

// --- fence ----------------------------------------------------------------------------------------------

async function fenceCommand(cfg: WatchdogConfig, clientId: string, signerOpt: string | undefined): Promise<void> {
  const stack = STACK_NAMES.map((n) => cfg.stacks[n]).find((s) => s.clientId === clientId && (signerOpt === undefined || s.signer === signerOpt));
  const signerId = signerOpt ?? stack?.signer;
  if (!signerId) throw new WatchdogError("UNKNOWN_CLIENT", `${clientId} is not a client of either stack; name its signer with --signer`, EXIT_CODES.notFound);
  if (!cfg.signers[signerId]) throw new WatchdogError("UNKNOWN_SIGNER", `no signer ${signerId} in the config`, EXIT_CODES.notFound);
  const ctx = await createContext(cfg, { logLevel: "silent", clockNeeded: false });
  try {
    const signer = ctx.signers.get(signerId)!;
    const generations = (await signer.each((i) => i.generation())).flatMap((r) => (r.ok ? [r.value] : []));
    if (generations.length === 0) await signer.generation(); // throws why no instance answers
    const gen = ctx.store.allocateGeneration(generations, "fence", `operator fenced ${clientId} at signer ${signerId}`, {
      clientId,
      signer: signerId,
    });
    const report = await setClientAtEveryInstance(signer, clientId, false, gen, `fence-${randomUUID()}`, {
      retry: (fn) => fn(),
      settleMs: 2_000,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    });
    if (!fenceHolds(report))
      throw new FailoverFailedError("FENCE_NOT_CONFIRMED", `${clientId} not confirmed fenced at signer ${signerId}: ${describeInstances(report)}`);
    const inFlight = (await signer.each((i) => i.client(clientId))).reduce((n, r) => n + (r.ok ? r.value.inFlight : 0), 0);
    process.stdout.write(`${clientId} fenced at signer ${signerId} (generation ${gen}); ${inFlight} request(s) in flight\n`);
    if (signer.instances.length > 1 || report.unreachable.length > 0) process.stdout.write(`  ${describeInstances(report)}\n`);
    if (report.unreachable.length > 0) {
      process.stdout.write(
        `warning: not read back at ${report.unreachable.map((u) => u.url).join(", ")}: the fence holds there only through the shared PostgreSQL release gate; check those instances\n`,
      );
    }
    if (stack && ctx.store.activeStack() === stack.name) {
      process.stdout.write(`warning: ${clientId} is the active stack's client: nothing signs now; run \`vigil failover\` to activate the other stack\n`);
    }
  } finally {
    await ctx.close();
  }
}

// --- history --------------------------------------------------------------------------------------------

function historyCommand(cfg: WatchdogConfig, opts: { json: boolean; limit: number }): void {
  const store = WatchdogStore.open(cfg.dataDir);
  try {
    const failovers = store.failovers(opts.limit).map(summarize);
    const audit = store.auditLog(opts.limit);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ failovers, audit: audit.map((a) => ({ ...a, at: new Date(a.at).toISOString() })) }, null, 2)}\n`);
      return;
    }
    const lines = ["failovers:"];
    if (failovers.length === 0) lines.push("  none");
    for (const f of failovers) {
      lines.push(
        `  #${f.id} ${f.startedAt} ${f.trigger} ${f.from} → ${f.to} ${f.state} gen ${f.generation ?? "-"}${f.activationToSignatureMs !== null ? ` first signature ${f.activationToSignatureMs} ms after activation` : ""}${f.message ? ` — ${f.message}` : ""}`,
      );
    }
    lines.push("audit log:");
    for (const a of audit) lines.push(`  ${new Date(a.at).toISOString()} ${a.kind.padEnd(10)} ${a.failoverId ? `#${a.failoverId} ` : ""}${a.message}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    store.close();
  }
}

function stackName(v: string): StackName {
  if (!(STACK_NAMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${STACK_NAMES.join(", ")}`);
  return v as StackName;
}
