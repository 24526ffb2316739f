import { VigilError } from "../common/index.js";

/** Codes raised by the commands themselves (not by a part they call). */
export type CliErrorCode =
  | "USAGE" // flags that contradict each other, or a destructive action without --yes
  | "NOT_CONFIRMED" // the operator answered no at a confirmation prompt
  | "OUTPUT_EXISTS" // the output file is already there; never overwritten
  | "DB_NOT_FOUND" // the slashing database a command needs is missing
  | "SIGNER_RUNNING" // a signer runs on the config and could sign with keys the command is about to take away
  | "COPY_NOT_VERIFIED"; // after `vigil slashing copy`, the two databases do not hold the same history

/** A command's own failure: only a CliErrorCode can be raised. */
export class CliError extends VigilError<CliErrorCode> {}
