import { CommanderError } from "commander";
import { EXIT_CODES, VigilError } from "../common/index.js";

/**
 * Wraps a subcommand action so every failure ends as one line on stderr and a distinct exit code.
 * Parts use this for all their actions; nothing else in the CLI calls process.exit.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      exitWithError(err);
    }
  };
}

export function exitWithError(err: unknown): never {
  if (err instanceof VigilError) {
    process.stderr.write(`vigil: ${err.message} [${err.code}]\n`);
    process.exit(err.exitCode);
  }
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_CODES.usage);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`vigil: unexpected error: ${message}\n`);
  process.exit(EXIT_CODES.failed);
}
