import { pino, type Logger } from "pino";

/** The watchdog's logger: JSON lines on stdout. Authorization headers and tokens are redacted by path. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { name: "vigil-watchdog", level, redact: { paths: ["token", "*.token", "headers.authorization", "*.headers.authorization"], censor: "[redacted]" } },
    destination ?? process.stdout,
  );
}
export type { Logger };
