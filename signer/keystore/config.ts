import fs from "node:fs";
import path from "node:path";
import { SettingChecks } from "../../common/index.js";
import { KeystoreConfigError, PinSourceError } from "./errors.js";
import type { PinSource } from "./pin.js";

/** The `hsm` section of Vigil's JSON config. */
export interface HsmConfig {
  /** Path of the PKCS#11 module (shared library). */
  module: string;
  /** Token label; slots are found by label because slot ids change across reboots and re-inits. */
  tokenLabel: string;
  pin: PinSource;
}

/** Command-line overrides; each wins over the config file. */
export interface HsmConfigOverrides {
  module?: string;
  tokenLabel?: string;
  pinFile?: string;
  pinEnv?: string;
  pinCredential?: string;
}

/** The checks shared with the signer's and the watchdog's config (config/settings-reader.ts). */
const check = new SettingChecks((field, message) => new KeystoreConfigError(`config: ${field} ${message}`));

/** Validates a parsed `hsm` section (unknown keys are rejected so a typo is not silently ignored). */
export function parseHsmSection(section: unknown): Partial<HsmConfig> {
  if (section === undefined) return {};
  const value = check.object(section, "hsm");
  check.onlyKeys(value, ["module", "tokenLabel", "pin"], "hsm");
  const out: Partial<HsmConfig> = {};
  if (value.module !== undefined) out.module = check.string(value.module, "hsm.module");
  if (value.tokenLabel !== undefined) out.tokenLabel = check.string(value.tokenLabel, "hsm.tokenLabel");
  if (value.pin !== undefined) out.pin = parsePinSource(value.pin);
  return out;
}

function parsePinSource(source: unknown): PinSource {
  if (typeof source === "string" || typeof source === "number") {
    throw new PinSourceError('config: hsm.pin must name a source ({"file"}, {"credential"} or {"env"}), never the PIN itself');
  }
  const value = check.object(source, "hsm.pin");
  const keys = Object.keys(value);
  if (keys.length !== 1) throw new KeystoreConfigError("config: hsm.pin must have exactly one of file, credential, env");
  const [key] = keys as [string];
  switch (key) {
    case "file":
      return { file: check.string(value.file, "hsm.pin.file") };
    case "credential":
      return { credential: check.string(value.credential, "hsm.pin.credential") };
    case "env":
      return { env: check.string(value.env, "hsm.pin.env") };
    default:
      throw new PinSourceError(`config: hsm.pin.${key} is not a PIN source (use file, credential or env; never the PIN inline)`);
  }
}

/** Reads `configFile` (if given), applies overrides and checks that everything needed is there. */
export function loadHsmConfig(configFile: string | undefined, overrides: HsmConfigOverrides = {}): HsmConfig {
  let fromFile: Partial<HsmConfig> = {};
  if (configFile !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(configFile, "utf8"));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err instanceof SyntaxError ? "not valid JSON" : "unreadable");
      throw new KeystoreConfigError(`cannot read config ${configFile}: ${reason}`);
    }
    if (!check.isObject(parsed)) throw new KeystoreConfigError(`config ${configFile} must be a JSON object`);
    fromFile = parseHsmSection(parsed.hsm);
    // As the signer reads it: relative to the config file, not to wherever the command runs.
    const pin = fromFile.pin;
    if (pin !== undefined && "file" in pin) fromFile.pin = { file: path.resolve(path.dirname(path.resolve(configFile)), pin.file) };
  }
  const pinOverrides: PinSource[] = [];
  if (overrides.pinFile !== undefined) pinOverrides.push({ file: overrides.pinFile });
  if (overrides.pinEnv !== undefined) pinOverrides.push({ env: overrides.pinEnv });
  if (overrides.pinCredential !== undefined) pinOverrides.push({ credential: overrides.pinCredential });
  if (pinOverrides.length > 1) throw new KeystoreConfigError("give only one of --pin-file, --pin-env, --pin-credential");

  const module = overrides.module ?? fromFile.module;
  const tokenLabel = overrides.tokenLabel ?? fromFile.tokenLabel;
  const pin = pinOverrides[0] ?? fromFile.pin;
  if (module === undefined) throw new KeystoreConfigError("no PKCS#11 module: set hsm.module in the config or pass --module");
  if (tokenLabel === undefined) throw new KeystoreConfigError("no token label: set hsm.tokenLabel in the config or pass --token-label");
  if (pin === undefined) throw new PinSourceError("no PIN source: set hsm.pin in the config or pass --pin-file, --pin-env or --pin-credential");
  return { module, tokenLabel, pin };
}
