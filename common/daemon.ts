/**
 * The life cycle both long-running commands share (`vigil signer start`, `vigil watchdog start`), so that
 * systemd sees the same thing from each:
 *
 *   start()   → STATUS= lines while starting, READY=1 once start() resolves (keys loaded, database open)
 *   running   → WATCHDOG=1 pings while the liveness check passes (see startSystemdWatchdogPinger)
 *   SIGTERM   → STOPPING=1, close() (stop accepting, finish and commit in-flight work, close database and
 *               HSM session), exit 0
 *   2nd signal → exit at once (128 + signal number). Every acknowledged database write is already committed
 *               (SQLite WAL, synchronous=FULL), so an abrupt exit loses only work that was never answered.
 */
import { keepStdioErrorsFromKillingTheProcess } from "./log-destination.js";
import {
  startSystemdWatchdogPinger,
  SystemdNotifier,
  unsetNotifyEnvironment,
  type LivenessCheck,
  type NotifierOptions,
  type SystemdWatchdogPinger,
} from "./systemd-notify.js";

export interface RunningDaemon {
  /** Graceful shutdown; resolves once everything is committed and closed. */
  close(): Promise<void>;
}

export interface DaemonHooks {
  /** Reports progress (systemctl status shows it). */
  status(text: string): void;
  /** Aborted when a stop is requested before start() has finished; start() may give up early on it. */
  signal: AbortSignal;
}

export type DaemonLog = (level: "info" | "warn" | "error", message: string) => void;

export interface RunDaemonOptions<T extends RunningDaemon> {
  /** "signer", "watchdog": used in log and status lines. */
  name: string;
  start(hooks: DaemonHooks): Promise<T>;
  /** Event-loop lag is always checked; this adds the daemon's own check (e.g. `() => db.isHealthy()`). */
  liveness?(daemon: T): ReturnType<LivenessCheck>;
  /** STATUS= sent with READY=1. */
  readyStatus?(daemon: T): string;
  /** Refreshed STATUS= while running (e.g. request counts); polled every statusIntervalMs. */
  runningStatus?(daemon: T): string;
  statusIntervalMs?: number;
  maxEventLoopLagMs?: number;
  log?: DaemonLog;
  // Seams for tests.
  notifier?: SystemdNotifier;
  notifierOptions?: NotifierOptions;
  signals?: NodeJS.Signals[];
  exit?: (code: number) => void;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

const defaultLog: DaemonLog = (level, message) => process.stderr.write(`vigil: ${level === "info" ? "" : `${level}: `}${message}\n`);

/**
 * Runs a daemon until a signal stops it. Resolves after a graceful shutdown (the process then exits 0 as soon
 * as nothing else is pending, or is forced to after a short grace period). Rejects if start() fails, so the
 * CLI can print the error and exit with its code; systemd sees the failure through the exit status.
 */
export async function runDaemon<T extends RunningDaemon>(options: RunDaemonOptions<T>): Promise<void> {
  const log = options.log ?? defaultLog;
  keepStdioErrorsFromKillingTheProcess(); // a status line lost to a full disk must not stop the daemon
  const notifier = options.notifier ?? new SystemdNotifier({ log: (level, m) => log(level, `systemd notify: ${m}`), ...options.notifierOptions });
  if (!options.notifier && !options.notifierOptions?.env) unsetNotifyEnvironment();
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];

  let state: "starting" | "running" | "stopping" = "starting";
  // Read through a function: a signal handler changes `state` behind the compiler's narrowing.
  const stateNow = () => state;
  let daemon: T | undefined;
  let pinger: SystemdWatchdogPinger | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  const abort = new AbortController();
  let resolveStop!: (signal: NodeJS.Signals) => void;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (resolveStop = resolve));

  const onSignal = (signal: NodeJS.Signals) => {
    if (state === "stopping") {
      log("warn", `${options.name}: second ${signal} during shutdown: exiting now`);
      exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
      return;
    }
    log("info", `${options.name}: ${signal} received: shutting down (send it again to exit at once)`);
    state = "stopping";
    void notifier.stopping(`stopping (${signal})`);
    abort.abort(new Error(`${signal} received during start-up`));
    resolveStop(signal);
  };
  for (const s of signals) process.on(s, onSignal);
  const removeHandlers = () => {
    for (const s of signals) process.off(s, onSignal);
  };

  try {
    void notifier.status(`starting ${options.name}`);
    try {
      daemon = await options.start({ status: (text) => void notifier.status(text), signal: abort.signal });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (stateNow() !== "stopping") {
        void notifier.status(`${options.name} failed to start: ${message}`);
        throw err;
      }
      // Asked to stop while starting, and start() gave up: that is a clean stop, not a failure.
      log("info", `${options.name}: start-up abandoned on request (${message})`);
      return finish(exit);
    }

    if (stateNow() === "starting") {
      state = "running";
      await notifier.ready(options.readyStatus?.(daemon) ?? `${options.name} running`);
      log("info", `${options.name}: ready`);
      const d = daemon;
      pinger = startSystemdWatchdogPinger({
        notifier,
        liveness: () => options.liveness?.(d),
        ...(options.maxEventLoopLagMs !== undefined ? { maxEventLoopLagMs: options.maxEventLoopLagMs } : {}),
        onUnhealthy: (reason) => log("error", `${options.name}: unhealthy, withholding the systemd watchdog ping: ${reason}`),
        onHealthy: () => {
          log("info", `${options.name}: healthy again`);
          void notifier.status(options.runningStatus?.(d) ?? `${options.name} running`);
        },
      });
      if (pinger) log("info", `${options.name}: systemd watchdog ping every ${pinger.intervalMs} ms while healthy`);
      if (options.runningStatus) {
        const every = options.statusIntervalMs ?? 10_000;
        statusTimer = setInterval(() => void notifier.status(options.runningStatus!(d)), every).unref();
      }
    }

    await stopRequested;
    pinger?.stop();
    if (statusTimer) clearInterval(statusTimer);
    void notifier.status(`${options.name}: finishing in-flight requests and closing`);
    const started = Date.now();
    await daemon.close();
    log("info", `${options.name}: stopped cleanly in ${Date.now() - started} ms`);
  } finally {
    pinger?.stop();
    if (statusTimer) clearInterval(statusTimer);
    // Handlers stay during close() so a second signal still exits at once; removed only when done.
    removeHandlers();
  }
  finish(exit);
}

/**
 * Exit 0 when the event loop drains (so buffered log lines reach the journal); a library that left a handle
 * open must not hold the unit in "deactivating" until systemd's stop timeout, so force it after a grace period.
 */
function finish(exit: (code: number) => void): void {
  process.exitCode = 0;
  setTimeout(() => exit(0), 2_000).unref();
}
