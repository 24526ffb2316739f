import path from "node:path";
import { readSecretFile } from "../../common/index.js";
import { PinSourceError } from "./errors.js";

/** Where the token PIN comes from. Never the PIN itself: config files are copied around and backed up. */
export type PinSource = { file: string } | { credential: string } | { env: string };

export function describePinSource(source: PinSource): string {
  if ("file" in source) return `PIN file ${source.file}`;
  if ("credential" in source) return `systemd credential ${JSON.stringify(source.credential)}`;
  return `environment variable ${source.env}`;
}

/** Reads the PIN. Throws PinSourceError (exit 16) on an insecure or missing source. */
export function readPin(source: PinSource, env: NodeJS.ProcessEnv = process.env): string {
  if ("file" in source) return readPinFile(source.file);
  if ("credential" in source) {
    const dir = env.CREDENTIALS_DIRECTORY;
    if (!dir)
      throw new PinSourceError(
        `PIN credential ${JSON.stringify(source.credential)} requested but $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)`,
      );
    if (!/^[A-Za-z0-9_.:-]+$/.test(source.credential) || source.credential.startsWith(".")) {
      throw new PinSourceError(`invalid systemd credential name ${JSON.stringify(source.credential)}`);
    }
    return readPinFile(path.join(dir, source.credential));
  }
  const value = env[source.env];
  if (value === undefined || value === "") throw new PinSourceError(`PIN environment variable ${source.env} is not set`);
  return stripNewline(value);
}

function readPinFile(file: string): string {
  return readSecretFile(file, { what: "PIN", error: (refusal) => new PinSourceError(refusal.message) });
}

/** Editors and `echo` add a final newline; it is never part of a PIN. */
function stripNewline(value: string): string {
  return value.replace(/\r?\n$/, "");
}
