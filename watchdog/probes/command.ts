import { spawn } from "node:child_process";

export interface CommandResult {
  /** null when the process was killed (timeout) or could not be started. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the command could not be started at all (ENOENT, EACCES). */
  spawnError?: string;
  durationMs: number;
}

const MAX_OUTPUT = 64 * 1024;

/**
 * Runs an argv command (no shell) with a hard timeout: on expiry the whole process group gets SIGKILL, so an
 * `ssh` stuck on a dead host cannot stall the watchdog. Never throws; the caller interprets the result.
 */
export function runCommand(argv: readonly string[], timeoutMs: number): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (!file) {
      resolve({ exitCode: null, stdout: "", stderr: "", timedOut: false, spawnError: "empty command", durationMs: 0 });
      return;
    }
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    const finish = (r: { exitCode: number | null; spawnError?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, stdout, stderr, timedOut, durationMs: Date.now() - started });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < MAX_OUTPUT) stderr += d.toString("utf8");
    });
    child.on("error", (err) => finish({ exitCode: null, spawnError: (err as NodeJS.ErrnoException).code ?? err.message }));
    child.on("close", (code) => finish({ exitCode: timedOut ? null : code }));
  });
}

/** One line describing a command's failure for logs and alerts (first line of stderr, or why it died). */
export function describeFailure(r: CommandResult): string {
  if (r.spawnError) return `could not start: ${r.spawnError}`;
  if (r.timedOut) return `timed out after ${r.durationMs} ms`;
  const line = (r.stderr.trim() || r.stdout.trim()).split("\n")[0] ?? "";
  return `exit ${r.exitCode}${line ? `: ${line.slice(0, 200)}` : ""}`;
}
