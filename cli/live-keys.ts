/**
 * After `vigil keys import/generate/delete` changed a token: a signer running on it only serves what it loaded. With
 * --config (the config that signer runs with) the CLI asks it to reload through POST /reload on its main listener;
 * otherwise, or when it does not answer, it says how the change goes live.
 */
import { loadSignerConfig } from "../signer/index.js";

const RELOAD_TIMEOUT_MS = 3_000;

const HOW_TO_RELOAD =
  "a signer already running on this token serves the change after a reload: `systemctl reload vigil-signer` (SIGHUP), `kill -HUP <pid>`, or POST /reload on its main listener";

/** Writes one line to stderr saying whether the running signer reloads now or how to make it. Never throws. */
export async function announceKeyChange(configFile: string | undefined): Promise<void> {
  const url = configFile === undefined ? undefined : reloadUrl(configFile);
  if (url === undefined) {
    process.stderr.write(`vigil: ${HOW_TO_RELOAD}\n`);
    return;
  }
  try {
    const res = await fetch(url, { method: "POST", signal: AbortSignal.timeout(RELOAD_TIMEOUT_MS) });
    if (res.status === 202 || res.status === 409) {
      process.stderr.write(
        `vigil: the signer at ${new URL(url).origin} is reloading its keys${res.status === 409 ? " (a reload was already running: run this again if it started before the change)" : ""}; GET ${url} shows when it is done\n`,
      );
      return;
    }
    process.stderr.write(`vigil: the signer at ${new URL(url).origin} answered POST /reload with ${res.status}; ${HOW_TO_RELOAD}\n`);
  } catch {
    process.stderr.write(`vigil: no signer answered at ${new URL(url).origin} (not running?); ${HOW_TO_RELOAD}\n`);
  }
}

/** The main listener's /reload, reached over loopback when it listens on a wildcard address; undefined for TLS or an unreadable config. */
function reloadUrl(configFile: string): string | undefined {
  try {
    const config = loadSignerConfig(configFile);
    if (config.tls !== undefined) return undefined; // its certificate is for its clients; not worth second-guessing here
    const wildcard = config.listen.host === "0.0.0.0" || config.listen.host === "::";
    const host = wildcard ? "127.0.0.1" : config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host;
    return `http://${host}:${config.listen.port}/reload`;
  } catch {
    return undefined; // a keys-only config (just `hsm`): no signer to reach
  }
}
