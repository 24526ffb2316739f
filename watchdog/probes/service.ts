import type { ServiceConfig } from "../config.js";
import { describeFailure, runCommand, type CommandResult } from "./command.js";

/**
 * What the status command said. "unknown" means we could not find out (timeout, ssh failure, command
 * missing): it is not evidence that the client is down, only that the watchdog cannot see it.
 */
export type ServiceState = "active" | "inactive" | "unknown";

export interface ServiceProbe {
  state: ServiceState;
  /** The status command's own word (systemctl prints active/inactive/failed/activating…), or the failure. */
  detail: string;
  durationMs: number;
}

/** systemctl is-active exits 3 for inactive/failed units; other codes mean the command itself failed. */
const INACTIVE_EXIT_CODES = new Set([3]);
const INACTIVE_WORDS = new Set(["inactive", "failed", "deactivating", "dead"]);

export async function probeService(service: ServiceConfig): Promise<ServiceProbe> {
  return interpretStatus(await runCommand(service.statusCommand, service.timeoutMs));
}

export function interpretStatus(r: CommandResult): ServiceProbe {
  const word = r.stdout.trim().split("\n")[0]?.trim() ?? "";
  if (r.exitCode === 0) return { state: "active", detail: word || "active", durationMs: r.durationMs };
  if (r.exitCode !== null && (INACTIVE_EXIT_CODES.has(r.exitCode) || INACTIVE_WORDS.has(word))) {
    return { state: "inactive", detail: word || `exit ${r.exitCode}`, durationMs: r.durationMs };
  }
  return { state: "unknown", detail: describeFailure(r), durationMs: r.durationMs };
}
