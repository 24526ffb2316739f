// Test helper: fresh SoftHSM2 tokens in the directory named by $SOFTHSM2_CONF (set by the npm script
// from test/setup/softhsm-conf.sh), so tests never touch the system token store.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { HsmConfig } from "../../signer/keystore/config.js";
import { createToken as createTokenViaPkcs11 } from "../../signer/keystore/token-create.js";

export const SOFTHSM_MODULE = process.env.SOFTHSM2_MODULE ?? "/usr/lib/softhsm/libsofthsm2.so";

export function softhsmConfPath(): string {
  const conf = process.env.SOFTHSM2_CONF;
  if (!conf || !fs.existsSync(conf)) {
    throw new Error("SOFTHSM2_CONF is not set to an existing file; run tests via `npm test` (see test/setup/softhsm-conf.sh)");
  }
  return conf;
}

/** The `directories.tokendir` of the SoftHSM2 config in use. */
export function tokenDir(): string {
  const text = fs.readFileSync(softhsmConfPath(), "utf8");
  const m = /^\s*directories\.tokendir\s*=\s*(.+?)\s*$/m.exec(text);
  if (!m) throw new Error("softhsm2.conf has no directories.tokendir");
  return m[1]!;
}

export interface TestToken {
  label: string;
  pin: string;
  soPin: string;
  /** A private temp dir for PIN files, exports and other data the test writes. */
  dataDir: string;
  pinFile: string;
  config: HsmConfig;
  /** Removes the token and the data dir. */
  destroy(): void;
}

function softhsmUtil(args: string[]): string {
  return execFileSync("softhsm2-util", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * Creates a fresh token labelled `label` (replacing any left over from an earlier run), through PKCS#11 in
 * this process as the signer's own first run does: no PIN on any command line.
 */
export function createToken(label: string, pin = "1234-test-pin", soPin = "5678-test-so"): TestToken {
  softhsmConfPath();
  deleteToken(label);
  createTokenViaPkcs11({ module: SOFTHSM_MODULE, label, pin, soPin });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `vigil-data-${label}-`));
  const pinFile = path.join(dataDir, "pin");
  fs.writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  return {
    label,
    pin,
    soPin,
    dataDir,
    pinFile,
    config: { module: SOFTHSM_MODULE, tokenLabel: label, pin: { file: pinFile } },
    destroy() {
      deleteToken(label);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function deleteToken(label: string): void {
  try {
    softhsmUtil(["--delete-token", "--token", label]);
  } catch {
    // no such token
  }
}

/** Every regular file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(p));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}
