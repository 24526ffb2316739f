/**
 * How both daemons write log lines: pino JSON by default (what log shippers parse), or pino-pretty's
 * human-readable text for a terminal (`--log-format pretty`); epoch-millisecond timestamps by default, or ISO
 * 8601 (`--log-timestamp iso`). Every line carries the same base fields in every daemon: pid, hostname, service.
 */
import os from "node:os";
import PinoPretty from "pino-pretty";
import { pino, type DestinationStream, type LoggerOptions } from "pino";

export const LOG_FORMATS = ["json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_TIMESTAMPS = ["epoch", "iso"] as const;
export type LogTimestamp = (typeof LOG_TIMESTAMPS)[number];

export interface LogStyle {
  format: LogFormat;
  timestamp: LogTimestamp;
}

export const DEFAULT_LOG_STYLE: LogStyle = { format: "json", timestamp: "epoch" };

/** The daemons' `service` base field: which program wrote a line, whatever the log collector adds. */
export type ServiceName = "vigil-signer" | "vigil-watchdog";

/**
 * pino options every daemon shares. An explicit `base` replaces pino's default (pid, hostname), so both are set
 * here; `name` stays for readers of the lines written before `service` existed.
 */
export function daemonLogOptions(service: ServiceName, style: LogStyle, extraBase: Record<string, unknown> = {}): Pick<LoggerOptions, "base" | "timestamp"> {
  return {
    base: { pid: process.pid, hostname: os.hostname(), service, name: service, ...extraBase },
    timestamp: style.timestamp === "iso" ? pino.stdTimeFunctions.isoTime : pino.stdTimeFunctions.epochTime,
  };
}

/**
 * `destination` as is for JSON; for pretty, each line is rendered by pino-pretty's formatter in the same
 * synchronous write() call, then handed to `destination`. Not pino-pretty's transport stream: it passes lines
 * through stream pipes on later ticks, so the last lines before an exit could be lost; this way the daemon's
 * non-blocking destination keeps its guarantees (bounded buffer, dropped lines counted, drained at close).
 */
export function styledDestination(destination: DestinationStream, format: LogFormat, opts: { colorize?: boolean } = {}): DestinationStream {
  if (format === "json") return destination;
  const render = PinoPretty.prettyFactory({ colorize: opts.colorize ?? false, translateTime: "SYS:standard", ignore: "name" });
  const flushable = destination as DestinationStream & { flush?: (cb?: (err?: Error) => void) => void };
  return {
    write(line: string) {
      let text: string;
      try {
        text = render(line);
      } catch {
        text = line; // a line pino-pretty cannot render is still worth writing as it came
      }
      destination.write(text);
    },
    ...(flushable.flush ? { flush: (cb?: (err?: Error) => void) => flushable.flush!(cb) } : {}),
  } as DestinationStream;
}
