import path from "node:path";

/**
 * Where state lives when nothing else is said: $VIGIL_DATA_DIR, or ./data under the current directory
 * (the embedded default for trying Vigil out). systemd units set VIGIL_DATA_DIR to the StateDirectory.
 */
export function defaultDataDir(): string {
  return path.resolve(process.env.VIGIL_DATA_DIR ?? "data");
}

export function defaultSlashingDbPath(): string {
  return path.join(defaultDataDir(), "slashing-protection.sqlite");
}
