import { pino, type Logger } from "pino";
import { daemonLogOptions, DEFAULT_LOG_STYLE, NonBlockingLogDestination, styledDestination, type LogStyle } from "../common/index.js";

/** The process's stdout log destination, created on first use (one per process, whatever the loggers). */
let stdoutDestination: NonBlockingLogDestination | undefined;

/**
 * The watchdog's logger: JSON lines (or pretty text, `style`) on stdout, with pid, hostname and service on every
 * line. Authorization headers and tokens are redacted by path. Writing never blocks the daemon: a full disk or a
 * stalled reader drops lines (vigil_log_lines_dropped_total).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, style: LogStyle = DEFAULT_LOG_STYLE): Logger {
  return pino(
    {
      ...daemonLogOptions("vigil-watchdog", style),
      level,
      redact: { paths: ["token", "*.token", "headers.authorization", "*.headers.authorization"], censor: "[redacted]" },
    },
    styledDestination(destination ?? sharedStdoutDestination(), style.format, { colorize: destination === undefined && process.stdout.isTTY === true }),
  );
}

/** One non-blocking stdout destination per process, however many loggers share it. */
function sharedStdoutDestination(): NonBlockingLogDestination {
  stdoutDestination ??= new NonBlockingLogDestination({ fd: 1 });
  return stdoutDestination;
}

/** Log lines this process dropped on stdout. */
export function logLinesDropped(): number {
  return stdoutDestination?.dropped ?? 0;
}
export type { Logger };
