import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { EXIT_CODES, VigilError } from "./errors.js";

/** The soft core-file-size limit of a process ("0", a size or "unlimited"), or undefined where /proc cannot tell. */
export function coreDumpLimit(pid: number | "self" = "self"): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/limits`, "utf8");
  } catch {
    return undefined;
  }
  return /^Max core file size\s+(\S+)/m.exec(text)?.[1];
}

/**
 * Decrypted keys and the HSM PIN live in this process's memory, so a crash's core dump would write them to
 * disk. Node has no setrlimit: when RLIMIT_CORE is not 0 already (systemd units set LimitCORE=0, `npm start`
 * runs `ulimit -c 0`), lower this very process's limit, soft and hard, with prlimit(1), then read it back, and
 * refuse to go on if it is still not 0. Same process, so no re-exec and nothing on a command line but our pid.
 * Linux only: other systems have no /proc to check (Vigil's deployment target is Linux).
 */
export function disableCoreDumps(): void {
  if (process.platform !== "linux") return;
  const before = coreDumpLimit();
  if (before === "0") return;
  let reason = "";
  try {
    execFileSync("prlimit", ["--pid", String(process.pid), "--core=0:0"], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? "").trim();
    reason = `: prlimit ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "not found (util-linux)" : stderr || (err as Error).message}`;
  }
  const after = coreDumpLimit();
  if (after !== "0") {
    throw new CoreDumpsEnabledError(
      `core dumps are enabled (limit ${after ?? before ?? "unknown"}) and could not be disabled${reason}; start with \`ulimit -c 0\` (systemd: LimitCORE=0)`,
    );
  }
}

/** Core dumps could not be turned off: a dump would write decrypted keys to disk, so the process refuses to run. */
export class CoreDumpsEnabledError extends VigilError<"CORE_DUMPS_ENABLED"> {
  constructor(message: string) {
    super("CORE_DUMPS_ENABLED", message, EXIT_CODES.failed);
  }
}
