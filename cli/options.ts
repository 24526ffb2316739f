import { InvalidArgumentError, Option, type Command } from "commander";
import { LOG_FORMATS, LOG_TIMESTAMPS } from "../common/index.js";

// Option parsers shared by every part's commands. Commander turns InvalidArgumentError into a usage error (exit 2).

/** A count or size: a whole number of at least 1 (safe as a JavaScript number). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive whole number");
  return n;
}

/** --log-format and --log-timestamp, as every daemon takes them; `configKeys` names the config fields they override. */
export function withLogStyleOptions(cmd: Command, configKeys: { format: string; timestamp: string }): Command {
  return cmd
    .addOption(
      new Option(
        "--log-format <format>",
        `log lines as pino JSON (default; for log shippers) or pretty text for a terminal (overrides the config's ${configKeys.format})`,
      ).choices(LOG_FORMATS),
    )
    .addOption(
      new Option(
        "--log-timestamp <style>",
        `the "time" field in Unix milliseconds (epoch, default) or ISO 8601 UTC (iso) (overrides the config's ${configKeys.timestamp})`,
      ).choices(LOG_TIMESTAMPS),
    );
}
