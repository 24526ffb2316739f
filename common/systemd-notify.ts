/**
 * The systemd notification protocol (sd_notify(3)) for Type=notify units: newline-separated KEY=VALUE
 * assignments in one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET. Node's `dgram` has no unix
 * datagram sockets, so the datagram goes out through `unix-dgram` (a small native addon, built by npm with the
 * same toolchain as better-sqlite3). Without $NOTIFY_SOCKET (not under systemd) every call is a no-op.
 *
 * Notifications never throw: a lost STATUS line must not take a signer down. A lost READY=1 or WATCHDOG=1
 * is caught by systemd itself (start-up timeout, watchdog timeout), which is the point of sending them.
 */
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";

/** The part of `unix-dgram`'s API used here (the package ships no type declarations). */
export interface UnixDgramSocket extends EventEmitter {
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
  bind(path: string): void;
  close(): void;
}
interface UnixDgramModule {
  createSocket(type: "unix_dgram", listener?: (msg: Buffer) => void): UnixDgramSocket;
}

/** Loads `unix-dgram`, or returns the reason it cannot be loaded. Resolved lazily: most CLI commands never notify. */
export function loadUnixDgram(): UnixDgramModule | { error: string } {
  try {
    return createRequire(import.meta.url)("unix-dgram") as UnixDgramModule;
  } catch (err) {
    return { error: `the unix-dgram package is not installed or did not build (${(err as Error).message.split("\n")[0]})` };
  }
}

/** Sends one datagram. Tests substitute their own. */
export type NotifyTransport = (socketPath: string, message: Buffer) => Promise<void>;

export type NotifyLog = (level: "warn" | "error", message: string) => void;

const defaultLog: NotifyLog = (_level, message) => process.stderr.write(`vigil: systemd notify: ${message}\n`);

function unixDgramTransport(log: NotifyLog): NotifyTransport | undefined {
  const mod = loadUnixDgram();
  if ("error" in mod) {
    log("error", `${mod.error}; readiness and watchdog pings cannot reach systemd`);
    return undefined;
  }
  // A socket per message, closed after it: notifications are rare (one per WatchdogSec/2), and an open
  // unix-dgram socket would keep the event loop alive after a graceful shutdown.
  return (socketPath, message) =>
    new Promise<void>((resolve, reject) => {
      const socket = mod.createSocket("unix_dgram");
      socket.on("error", () => {}); // errors are reported through the send callback
      const done = (err?: Error) => {
        socket.close();
        if (err) reject(err);
        else resolve();
      };
      const attempt = (retriesLeft: number) =>
        socket.send(message, 0, message.length, socketPath, (err) => {
          // "congestion": the socket buffer is full (EAGAIN). systemd drains it quickly; try again shortly.
          if (err?.message === "congestion" && retriesLeft > 0) setTimeout(() => attempt(retriesLeft - 1), 50).unref();
          else done(err);
        });
      attempt(5);
    });
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  transport?: NotifyTransport;
  log?: NotifyLog;
}

/** One daemon's line to the service manager. */
export class SystemdNotifier {
  /** The socket path, or undefined when not running under a notify-aware service manager. */
  readonly socketPath: string | undefined;
  /** Half of WatchdogSec= in ms (how often to ping), or undefined when systemd expects no pings from us. */
  readonly watchdogIntervalMs: number | undefined;
  private transport: NotifyTransport | undefined;
  private readonly log: NotifyLog;
  private failedOnce = false;

  constructor(options: NotifierOptions = {}) {
    const env = options.env ?? process.env;
    this.log = options.log ?? defaultLog;
    let socketPath = env.NOTIFY_SOCKET || undefined;
    if (socketPath?.startsWith("@")) {
      // An abstract socket name needs a sockaddr that unix-dgram cannot build. systemd itself always hands
      // out a path (/run/systemd/notify); some container runtimes do not.
      this.log("error", `NOTIFY_SOCKET ${socketPath} is an abstract socket, which Vigil cannot send to; notifications are off`);
      socketPath = undefined;
    }
    this.socketPath = socketPath;
    this.watchdogIntervalMs = socketPath ? systemdWatchdogIntervalMs(env) : undefined;
    if (socketPath) this.transport = options.transport ?? unixDgramTransport(this.log);
  }

  get enabled(): boolean {
    return this.socketPath !== undefined && this.transport !== undefined;
  }

  /** Sends assignments (KEY=VALUE lines). Resolves once sent, or at once when notifications are off; never rejects. */
  async send(...assignments: string[]): Promise<void> {
    if (!this.enabled || assignments.length === 0) return;
    const message = Buffer.from(assignments.join("\n"), "utf8");
    try {
      await this.transport!(this.socketPath!, message);
      this.failedOnce = false;
    } catch (err) {
      // Once per failure streak: a vanished socket would otherwise log every watchdog interval.
      if (!this.failedOnce) this.log("warn", `cannot send to ${this.socketPath}: ${(err as Error).message}`);
      this.failedOnce = true;
    }
  }

  ready(status?: string): Promise<void> {
    return status === undefined ? this.send("READY=1") : this.send("READY=1", statusLine(status));
  }

  status(text: string): Promise<void> {
    return this.send(statusLine(text));
  }

  stopping(status?: string): Promise<void> {
    return status === undefined ? this.send("STOPPING=1") : this.send("STOPPING=1", statusLine(status));
  }

  watchdog(): Promise<void> {
    return this.send("WATCHDOG=1");
  }
}

/** STATUS= is one line: a newline would start a new assignment. */
function statusLine(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, " ").slice(0, 1024)}`;
}

/** Half of $WATCHDOG_USEC in ms, if the watchdog is meant for this process (sd_watchdog_enabled(3)). */
export function systemdWatchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== "" && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

/**
 * Children (the watchdog runs systemctl and ssh) must not inherit the notify socket: with NotifyAccess=main
 * systemd ignores them anyway, and anything else that listens to it would be confused.
 */
export function unsetNotifyEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
}

/** A liveness check: healthy when it returns or resolves to nothing or true; not when it throws, rejects, or gives false or a reason string. */
// biome-ignore lint/suspicious/noConfusingVoidType: a check may be any function, async or not, that returns nothing when healthy
export type LivenessCheck = () => Promise<void | boolean | string> | void | boolean | string;

export interface SystemdWatchdogPingerOptions {
  /** Typically: a trivial query on the database the daemon depends on (SlashingDb.isHealthy()). */
  liveness: LivenessCheck;
  notifier: SystemdNotifier;
  /** Ping interval; default: the notifier's (half of WatchdogSec=). */
  intervalMs?: number;
  /** The event loop must not have stalled longer than this since the last tick. Default: a quarter of WatchdogSec= (≤ 5 s). */
  maxEventLoopLagMs?: number;
  /** How long the liveness check may take. Default: half the interval. */
  checkTimeoutMs?: number;
  /** Called on each failed check, with why (it is also put in STATUS=). */
  onUnhealthy?: (reason: string) => void;
  /** Called when a check passes again after failing. */
  onHealthy?: () => void;
}

export interface SystemdWatchdogPinger {
  readonly intervalMs: number;
  /** Pings sent and checks failed so far. */
  readonly stats: { pings: number; failures: number };
  stop(): void;
}

/**
 * Sends WATCHDOG=1 every interval, but only while the process is demonstrably alive: the event loop has not
 * stalled (measured with perf_hooks over the interval, plus the tick's own lateness) and the liveness check
 * passes within its timeout. A wedged signer therefore stops pinging and systemd restarts it
 * (WatchdogSec= → SIGABRT, then Restart=on-failure). Returns undefined when systemd expects no pings.
 */
export function startSystemdWatchdogPinger(options: SystemdWatchdogPingerOptions): SystemdWatchdogPinger | undefined {
  const notifier = options.notifier;
  const intervalMs = options.intervalMs ?? notifier.watchdogIntervalMs;
  if (intervalMs === undefined || !notifier.enabled) return undefined;
  const maxLagMs = options.maxEventLoopLagMs ?? Math.min(5_000, Math.max(10, intervalMs / 2));
  const checkTimeoutMs = options.checkTimeoutMs ?? Math.max(10, intervalMs / 2);

  const histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const stats = { pings: 0, failures: 0 };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let unhealthy = false;
  let due = Date.now() + intervalMs;

  const tick = async () => {
    // Two views of a stall: how late this timer fired, and the worst delay perf_hooks saw since the last tick.
    const late = Date.now() - due;
    const worstLagMs = Math.max(late, histogram.max / 1e6);
    histogram.reset();
    let reason: string | undefined;
    if (worstLagMs > maxLagMs) reason = `event loop stalled for ${Math.round(worstLagMs)} ms (limit ${maxLagMs} ms)`;
    else reason = await runCheck(options.liveness, checkTimeoutMs);
    if (stopped) return;
    if (reason === undefined) {
      await notifier.watchdog();
      stats.pings++;
      if (unhealthy) {
        unhealthy = false;
        options.onHealthy?.();
      }
    } else {
      stats.failures++;
      unhealthy = true;
      options.onUnhealthy?.(reason);
      await notifier.status(`unhealthy: ${reason}; withholding watchdog ping`);
    }
    schedule();
  };
  const schedule = () => {
    if (stopped) return;
    due = Date.now() + intervalMs;
    // unref: the pinger alone must never keep a daemon that is shutting down alive.
    timer = setTimeout(() => void tick(), intervalMs).unref();
  };

  // First ping at once: systemd arms the watchdog when the unit becomes active.
  void (async () => {
    const reason = await runCheck(options.liveness, checkTimeoutMs);
    if (stopped) return;
    if (reason === undefined) {
      await notifier.watchdog();
      stats.pings++;
    } else {
      stats.failures++;
      unhealthy = true;
      options.onUnhealthy?.(reason);
    }
    schedule();
  })();

  return {
    intervalMs,
    stats,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      histogram.disable();
    },
  };
}

/** Undefined when the check passed; otherwise why not. */
async function runCheck(check: LivenessCheck, timeoutMs: number): Promise<string | undefined> {
  let timeout: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      Promise.resolve().then(check),
      new Promise<string>((resolve) => {
        timeout = setTimeout(() => resolve(`liveness check did not answer within ${timeoutMs} ms`), timeoutMs);
      }),
    ]);
    if (result === false) return "liveness check failed";
    return typeof result === "string" ? result : undefined;
  } catch (err) {
    return `liveness check failed: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    if (timeout) clearTimeout(timeout);
  }
}
