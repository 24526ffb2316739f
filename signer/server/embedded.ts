/**
 * The embedded default: everything a first run needs, created under one data directory and reused after.
 * - `softhsm/softhsm2.conf` + `softhsm/tokens/`: a SoftHSM2 token store of its own (never the system's);
 * - token "vigil-embedded" with random user and SO PINs in `softhsm/user.pin` / `softhsm/so.pin` (0600);
 * - the wrapping key (keystore `initToken`), and N generated keys if the token holds none;
 * - `signer.json`: the config it runs with (edit it and start with --config next time, or keep --embedded);
 * - the slashing database, fencing state, audit feed and admin token, as for any signer.
 * All HSM work goes through the key store's public API, token creation included (C_InitToken/C_InitPIN in this
 * process): no child process ever sees a PIN, on its command line or in its environment.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir, EXIT_CODES, writeFilePrivateAtomic } from "../../common/index.js";
import { createToken, HsmTokenNotFoundError, initToken, openKeyStore, tokenStatus, type HsmConfig } from "../keystore/index.js";
import { isNetworkFile } from "../signing/index.js";
import { loadSignerConfig, networkOfSetting, type SignerConfig } from "./config.js";
import { SignerSetupError } from "./service-errors.js";

export const EMBEDDED_TOKEN_LABEL = "vigil-embedded";

export interface EmbeddedOptions {
  dataDir: string;
  /** A network name or a consensus-spec config.yaml path (relative to the current directory). */
  network: string;
  /** Keys generated when the token has none (default 4). */
  keys?: number;
  host?: string;
  port?: number;
  /** Progress lines for the operator. */
  say?: (line: string) => void;
}

export interface EmbeddedSetup {
  config: SignerConfig;
  configFile: string;
  createdToken: boolean;
  generatedKeys: string[];
}

const MODULE_CANDIDATES = [
  "/usr/lib/softhsm/libsofthsm2.so",
  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib64/pkcs11/libsofthsm2.so",
  "/usr/lib64/softhsm/libsofthsm2.so",
  "/usr/local/lib/softhsm/libsofthsm2.so",
  "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

export const SOFTHSM_INSTALL_HINT =
  "SoftHSM2 is not installed. Install it with `sudo apt-get install -y softhsm2` (Debian/Ubuntu), " +
  "`sudo dnf install softhsm` (Fedora/RHEL) or `brew install softhsm` (macOS), then run this command again";

/** The SoftHSM2 PKCS#11 library, or throws with exactly what to install. */
export function findSoftHsmModule(): string {
  const fromEnv = process.env.SOFTHSM2_MODULE;
  for (const candidate of [...(fromEnv ? [fromEnv] : []), ...MODULE_CANDIDATES]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new SignerSetupError("SOFTHSM_MISSING", SOFTHSM_INSTALL_HINT, EXIT_CODES.hsmModule);
}

/** Creates (first run) or reuses (later runs) the embedded setup under `opts.dataDir`; returns the config to start. */
export async function setUpEmbedded(opts: EmbeddedOptions): Promise<EmbeddedSetup> {
  const say = opts.say ?? (() => {});
  // Checked before anything is created: a first run must not leave a token behind a config that cannot start.
  const wanted = networkOfSetting(opts.network, process.cwd());
  const networkSetting = isNetworkFile(opts.network) ? path.resolve(opts.network) : opts.network;
  const dataDir = path.resolve(opts.dataDir);
  const module = findSoftHsmModule();
  const hsmDir = path.join(dataDir, "softhsm");
  const tokensDir = path.join(hsmDir, "tokens");
  const conf = path.join(hsmDir, "softhsm2.conf");
  const pinFile = path.join(hsmDir, "user.pin");
  const soPinFile = path.join(hsmDir, "so.pin");
  ensurePrivateDir(dataDir);
  ensurePrivateDir(hsmDir);
  ensurePrivateDir(tokensDir);
  if (!fs.existsSync(conf)) {
    writeFilePrivateAtomic(conf, `directories.tokendir = ${tokensDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  }
  process.env.SOFTHSM2_CONF = conf; // before this process first loads the module

  const hsm: HsmConfig = { module, tokenLabel: EMBEDDED_TOKEN_LABEL, pin: { file: pinFile } };
  let createdToken = false;
  if (!tokenExists(hsm, pinFile)) {
    if (fs.existsSync(pinFile) && fs.readdirSync(tokensDir).length > 0) {
      throw new SignerSetupError(
        "EMBEDDED_STATE",
        `the token store in ${tokensDir} has no token "${EMBEDDED_TOKEN_LABEL}"; move the directory away to start afresh`,
        EXIT_CODES.conflict,
      );
    }
    const pin = crypto.randomBytes(16).toString("hex");
    const soPin = crypto.randomBytes(16).toString("hex");
    writeFilePrivateAtomic(pinFile, `${pin}\n`);
    writeFilePrivateAtomic(soPinFile, `${soPin}\n`);
    createToken({ module, label: EMBEDDED_TOKEN_LABEL, pin, soPin });
    createdToken = true;
    say(`created SoftHSM2 token "${EMBEDDED_TOKEN_LABEL}" in ${tokensDir} (PIN in ${pinFile}, mode 0600)`);
  }
  const init = initToken(hsm);
  if (init.created) say("created the key-wrapping key on the token");

  let generatedKeys: string[] = [];
  const store = openKeyStore(hsm);
  try {
    const existing = await store.list();
    if (existing.length === 0) {
      generatedKeys = await store.generate(opts.keys ?? 4);
      say(`generated ${generatedKeys.length} validator key(s) on the token`);
    }
  } finally {
    await store.close();
  }

  const configFile = path.join(dataDir, "signer.json");
  if (!fs.existsSync(configFile)) {
    const config = {
      network: networkSetting,
      listen: { host: opts.host ?? "127.0.0.1", port: opts.port ?? 9000 },
      dataDir: ".",
      softhsmConf: "softhsm/softhsm2.conf",
      hsm: { module, tokenLabel: EMBEDDED_TOKEN_LABEL, pin: { file: "softhsm/user.pin" } },
      admin: { tokenFile: "admin.token" },
      keymanager: { enabled: false, tokenFile: "keymanager.token" },
    };
    writeFilePrivateAtomic(configFile, `${JSON.stringify(config, null, 2)}\n`);
    say(`wrote ${configFile}`);
  }
  const config = loadSignerConfig(configFile);
  if (config.network.name !== wanted.name) {
    say(`note: ${configFile} says network "${config.network.name}"; using it (the file wins over --network)`);
  }
  if (opts.host !== undefined) config.listen.host = opts.host;
  if (opts.port !== undefined) config.listen.port = opts.port;
  return { config, configFile, createdToken, generatedKeys };
}

function tokenExists(hsm: HsmConfig, pinFile: string): boolean {
  if (!fs.existsSync(pinFile)) return false;
  try {
    tokenStatus(hsm);
    return true;
  } catch (err) {
    if (err instanceof HsmTokenNotFoundError) return false;
    throw err;
  }
}

/** What to give each validator client to use this signer. */
export function clientInstructions(url: string): string {
  return [
    `Point a validator client at ${url}:`,
    `  Lodestar:   lodestar validator --externalSigner.url ${url} --externalSigner.fetch`,
    `  Teku:       teku validator-client --validators-external-signer-url=${url} --validators-external-signer-public-keys=external-signer`,
    `  Prysm:      validator --validators-external-signer-url=${url} --validators-external-signer-public-keys=${url}/api/v1/eth2/publicKeys`,
    `  Nimbus:     nimbus_validator_client --web3-signer-url=${url}`,
    `  Lighthouse: per key in validator_definitions.yml: { enabled: true, voting_public_key: "0x…", type: web3signer, url: "${url}" }`,
    `              (list the keys with: curl -s ${url}/api/v1/eth2/publicKeys)`,
  ].join("\n");
}
