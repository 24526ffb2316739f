import fs from "node:fs";
import path from "node:path";

/**
 * A watchdog config (the JSON a file would hold) whose signer and beacon nodes are dead endpoints: the daemon runs its
 * loop, listeners and logs, observes failures every round, and never acts (no automatic failover). For tests of the
 * daemon itself. Writes the admin token file the config names into `dir`; `extra` replaces top-level sections.
 */
export function deadEndpointsWatchdogConfig(dir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "admin.token"), "admin-token-0123456789abcdef\n", { mode: 0o600 });
  const stack = (clientId: string) => ({
    clientId,
    signer: "main",
    beaconNode: { url: "http://127.0.0.1:1" },
    service: { statusCommand: ["true"], stopCommand: ["true"], startCommand: ["true"] },
  });
  return {
    dataDir: path.join(dir, "state"),
    chain: { genesisTime: Math.floor(Date.now() / 1000), slotDurationMs: 400, slotsPerEpoch: 8 },
    validators: { indices: ["1"] },
    signers: { main: { url: "http://127.0.0.1:1", adminTokenFile: "admin.token", timeoutMs: 200 } },
    stacks: { primary: stack("p"), backup: stack("b") },
    failover: { automatic: false },
    ...extra,
  };
}
