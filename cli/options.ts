import { InvalidArgumentError } from "commander";

// Option parsers shared by every part's commands. Commander turns InvalidArgumentError into a usage error (exit 2).

/** A count or size: a whole number of at least 1 (safe as a JavaScript number). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive whole number");
  return n;
}
