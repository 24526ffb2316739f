import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { CliError } from "./errors.js";
import { announceKeyChange } from "./live-keys.js";
import { canPrompt, promptPassword } from "./password-prompt.js";
import { positiveInt } from "./options.js";
import { action } from "./run.js";
import { defaultDataDir, ensurePrivateDir, EXIT_CODES, writeFilePrivateAtomic } from "../common/index.js";
import { SlashingDbError, type SlashingDbLocation } from "../slashing-db/index.js";
import { dbLocation, dbOptions, PASSWORD_FILE_ENV, withAdmin, type DbFlags } from "./slashing-location.js";
import {
  createToken,
  decryptKeystoreContents,
  decryptKeystores,
  describePinSource,
  discoverKeystores,
  initToken,
  InvalidKeystoreError,
  KeyNotFoundError,
  KeystoreConfigError,
  loadHsmConfig,
  normalizePubkey,
  Pkcs11KeyStore,
  readPin,
  tokenStatus,
  type HsmConfig,
  type SecretKeyInput,
  abbreviate,
  Progress,
  slashingDbOfConfig,
  DataDirLock,
  loadSignerConfig,
} from "../signer/index.js";

interface HsmFlags {
  config?: string;
  module?: string;
  tokenLabel?: string;
  pinFile?: string;
  pinEnv?: string;
  pinCredential?: string;
}

/** The HSM flags every key command takes; each overrides the config file's `hsm` section. */
function withHsmOptions(cmd: Command): Command {
  return cmd
    .option(
      "--config <file>",
      "the signer's config file (e.g. data/signer.json): token, PIN file, softhsmConf and database as the signer resolves them; after import, generate or delete the signer it describes is asked to reload (POST /reload)",
    )
    .option("--module <path>", "PKCS#11 module (shared library)")
    .option("--token-label <label>", "label of the token holding the keys")
    .option("--pin-file <file>", "read the PIN from this file (must be mode 0600 or stricter)")
    .option("--pin-env <var>", "read the PIN from this environment variable")
    .option("--pin-credential <name>", "read the PIN from this systemd credential ($CREDENTIALS_DIRECTORY/<name>)");
}

function hsmConfig(flags: HsmFlags): HsmConfig {
  const config = loadHsmConfig(flags.config, flags);
  if (flags.config !== undefined) useSofthsmConfOf(flags.config);
  return config;
}

/**
 * The config's `softhsmConf` (the embedded config has one), as the signer uses it: SoftHSM2 reads SOFTHSM2_CONF
 * when its module is first loaded in this process, so it is set before any token is opened.
 */
function useSofthsmConfOf(configFile: string): void {
  const parsed = JSON.parse(fs.readFileSync(configFile, "utf8")) as { softhsmConf?: unknown };
  if (parsed.softhsmConf === undefined) return;
  if (typeof parsed.softhsmConf !== "string") throw new KeystoreConfigError(`config ${configFile}: softhsmConf must be a path`);
  process.env.SOFTHSM2_CONF = path.resolve(path.dirname(path.resolve(configFile)), parsed.softhsmConf);
}

/**
 * Where a key command finds the slashing database: --db / --db-url when given; else the one the --config file
 * names, as the signer resolves it (after a move to PostgreSQL the old SQLite file may still be there, and its
 * stale history must never be what a deleted key takes with it); else the default file.
 */
function keysDbLocation(flags: HsmFlags & DbFlags): SlashingDbLocation {
  const dbFlags = [flags.db, flags.dbUrl, flags.dbPasswordFile, flags.dbTls, flags.dbTlsCa];
  if (flags.config === undefined || dbFlags.some((f) => f !== undefined)) return dbLocation(flags);
  hsmConfig(flags); // the config file's own errors (unreadable, not JSON), as every key command reports them
  return slashingDbOfConfig(JSON.parse(fs.readFileSync(flags.config, "utf8")), path.dirname(path.resolve(flags.config)));
}

async function withStore<T>(flags: HsmFlags, use: (store: Pkcs11KeyStore) => Promise<T>): Promise<T> {
  const store = Pkcs11KeyStore.open(hsmConfig(flags));
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

export function hsmCommand(): Command {
  const cmd = new Command("hsm").description("the PKCS#11 token that holds the key-wrapping key");

  withHsmOptions(cmd.command("init").description("create the wrapping key on the token if it is missing (never replaces one)")).action(
    action((flags: HsmFlags) => {
      const r = initToken(hsmConfig(flags));
      console.log(r.created ? `created wrapping key on token "${r.tokenLabel}"` : `token "${r.tokenLabel}" already has a wrapping key; left unchanged`);
    }),
  );

  withHsmOptions(
    cmd
      .command("create-token")
      .description("create the token (SoftHSM2, or any module with a free slot): user PIN from the PIN source, SO PIN from --so-pin-file"),
  )
    .requiredOption("--so-pin-file <file>", "security officer PIN: read if the file exists (0600), else generated and written there (0600)")
    .action(
      action((flags: HsmFlags & { soPinFile: string }) => {
        const config = hsmConfig(flags);
        const pin = readPin(config.pin);
        // Both PINs stay in this process (C_InitToken / C_InitPIN): never on a command line.
        const existing = fs.existsSync(flags.soPinFile);
        const soPin = existing ? readPin({ file: flags.soPinFile }) : crypto.randomBytes(16).toString("hex");
        // A generated SO PIN is on disk before the token exists, so it can never be lost.
        if (!existing) writeFilePrivateAtomic(flags.soPinFile, `${soPin}\n`);
        try {
          createToken({ module: config.module, label: config.tokenLabel, pin, soPin });
        } catch (err) {
          if (!existing) fs.rmSync(flags.soPinFile, { force: true });
          throw err;
        }
        console.log(`created token "${config.tokenLabel}"; user PIN from ${describePinSource(config.pin)}`);
        console.log(
          existing
            ? `SO PIN read from ${flags.soPinFile}`
            : `SO PIN generated and written to ${flags.soPinFile} (0600): keep a copy offline and delete it from this host`,
        );
      }),
    );

  withHsmOptions(cmd.command("status").description("show the token, its mechanisms and how many keys it holds"))
    .option("--json", "machine-readable output (includes every mechanism)", false)
    .action(
      action((flags: HsmFlags & { json: boolean }) => {
        const s = tokenStatus(hsmConfig(flags));
        if (flags.json) {
          console.log(JSON.stringify(s, null, 2));
          return;
        }
        const req = Object.entries(s.requiredMechanisms).map(([m, ok]) => `${m} ${ok ? "yes" : "MISSING"}`);
        console.log(
          `module:       ${s.module.path} (${s.module.library} ${s.module.libraryVersion}, ${s.module.manufacturer}, Cryptoki ${s.module.cryptokiVersion})`,
        );
        console.log(`token:        "${s.token.label}" (${s.token.manufacturer} ${s.token.model}, serial ${s.token.serial})`);
        console.log(`user PIN:     ${s.token.pinState}`);
        console.log(`mechanisms:   ${req.join(", ")}; ${s.mechanisms.length} in total (--json lists them)`);
        const warnings = s.wrappingKey.warnings.length > 0 ? `; WARNING: ${s.wrappingKey.warnings.join(", ")}` : "";
        console.log(`wrapping key: ${s.wrappingKey.present ? `present (${s.wrappingKey.label})${warnings}` : "MISSING: run `vigil hsm init`"}`);
        console.log(`keys:         ${s.keyCount}`);
      }),
    );
  return cmd;
}

const DB_HELP = `
The slashing-protection database: --db FILE (SQLite) or --db-url postgres://user@host:port/db with the
role's password in a 0600 file (--db-password-file FILE, or ${PASSWORD_FILE_ENV}=FILE), as for
\`vigil slashing\`; without either, the one --config names ("slashingDb", or the default file in its
"dataDir"; a passwordCredential is read from $CREDENTIALS_DIRECTORY), else the default file.
Exit codes: 40 server unreachable, 41 authentication failed, 42 another network's database,
43 schema newer than this Vigil, 44 server not durable.`;

export function keysCommand(): Command {
  const cmd = new Command("keys").description("validator keys stored on the HSM token (envelope-encrypted)");

  dbOptions(
    withHsmOptions(cmd.command("import").description("import EIP-2335 keystores (idempotent), optionally with an EIP-3076 interchange file"))
      .requiredOption("--keystores <dir>", "directory of EIP-2335 keystores: its *.json files (deposit_data*.json skipped)")
      .option(
        "--password-file <file>",
        "one password for every keystore (default: <keystore name>.txt beside each keystore; without those, asked on the terminal)",
      )
      .option("--passwords-dir <dir>", "directory holding <keystore name>.txt password files")
      .option("--interchange <file>", "EIP-3076 slashing-protection interchange to import in the same step (into --db or --db-url)"),
  )
    .addHelpText("after", DB_HELP)
    .option("--workers <n>", "decryption threads (default: one per core, limited by free memory)", positiveInt)
    .option("--json", "print the imported and unchanged public keys as JSON", false)
    .action(
      action(
        async (
          flags: HsmFlags &
            DbFlags & {
              keystores: string;
              passwordFile?: string;
              passwordsDir?: string;
              interchange?: string;
              workers?: number;
              json: boolean;
            },
        ) => {
          if (flags.passwordFile && flags.passwordsDir) throw new CliError("USAGE", "give --password-file or --passwords-dir, not both", EXIT_CODES.usage);
          const interchange = flags.interchange === undefined ? undefined : readText(flags.interchange);
          // Resolved before anything slow: a bad flag or unreadable password file is a usage error, not a late failure.
          const location = interchange === undefined ? undefined : keysDbLocation(flags);
          const sources = discoverKeystores(flags.keystores, { passwordFile: flags.passwordFile, passwordsDir: flags.passwordsDir });
          // No password file given and keystores without one beside them: ask on the terminal, once, for those.
          const unpaired = flags.passwordFile === undefined && flags.passwordsDir === undefined ? sources.filter((s) => !fs.existsSync(s.passwordFile)) : [];
          const prompted =
            unpaired.length > 0 && canPrompt() ? await promptPassword(`password for the ${unpaired.length} keystore(s) in ${flags.keystores}: `) : undefined;
          await withStore(flags, async (store) => {
            // The token is opened first so a wrong PIN or missing wrapping key fails before the slow decryption.
            let secrets: SecretKeyInput[] =
              prompted === undefined
                ? await decryptKeystores(sources, { workers: flags.workers })
                : await decryptKeystoreContents(
                    sources.map((s) => ({
                      label: s.file,
                      json: readText(s.file),
                      password: unpaired.includes(s) ? prompted : readText(s.passwordFile).replace(/\r?\n$/, ""),
                    })),
                    flags.workers === undefined ? {} : { workers: flags.workers },
                  );
            try {
              if (interchange !== undefined && location !== undefined) {
                if (location.kind === "sqlite") ensurePrivateDir(path.dirname(path.resolve(location.path)));
                await withAdmin(location, false, async (db) => {
                  const s = await db.importInterchange(interchange);
                  console.error(`slashing protection: imported history of ${s.validators} validator(s) into ${db.location}`);
                });
              }
              let progress: Progress | undefined; // only once there is something new to store
              const result = await store.importKeys(secrets, {
                onProgress: (d, total) => {
                  progress ??= new Progress("storing keys", total);
                  progress.update(d);
                },
              });
              secrets = [];
              progress?.finish();
              const summary = `imported ${result.imported.length} key(s); ${result.unchanged.length} already on token "${store.tokenLabel}"`;
              if (flags.json) {
                console.log(JSON.stringify(result, null, 2));
                console.error(summary);
              } else {
                console.log(summary);
              }
              if (result.imported.length > 0) await announceKeyChange(flags.config);
            } finally {
              for (const s of secrets) s.secretKey.fill(0);
            }
          });
        },
      ),
    );

  withHsmOptions(cmd.command("generate").description("generate fresh keys (token RNG mixed with the OS's) and print their public keys"))
    .requiredOption("--count <n>", "how many keys", positiveInt)
    .option("--json", "print a JSON array", false)
    .action(
      action(async (flags: HsmFlags & { count: number; json: boolean }) => {
        await withStore(flags, async (store) => {
          const progress = new Progress("generating keys", flags.count);
          const pubkeys = await store.generate(flags.count, { onProgress: (d) => progress.update(d) });
          if (flags.count > 100) progress.finish();
          console.log(flags.json ? JSON.stringify(pubkeys, null, 2) : pubkeys.join("\n"));
          await announceKeyChange(flags.config);
        });
      }),
    );

  withHsmOptions(cmd.command("list").description("list the public keys on the token (nothing is decrypted)"))
    .option("--json", "print a JSON array", false)
    .action(
      action(async (flags: HsmFlags & { json: boolean }) => {
        await withStore(flags, async (store) => {
          const keys = await store.list();
          if (flags.json)
            console.log(
              JSON.stringify(
                keys.map((k) => k.pubkey),
                null,
                2,
              ),
            );
          else if (keys.length > 0) console.log(keys.map((k) => k.pubkey).join("\n"));
        });
      }),
    );

  withHsmOptions(cmd.command("verify").description("decrypt every record and check it against its public key (as the signer does at start-up)")).action(
    action(async (flags: HsmFlags) => {
      await withStore(flags, async (store) => {
        const started = Date.now();
        const loaded = await store.load();
        console.log(`${loaded.size} key(s) verified in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      });
    }),
  );

  dbOptions(
    withHsmOptions(
      cmd
        .command("delete")
        .description(
          "export the keys' slashing-protection history (from --db or --db-url) to a file, then remove them from the token (refused while the signer of --config runs: use its keymanager API, or stop it)",
        ),
    )
      .argument("<pubkeys...>", "public keys (0x-prefixed hex)")
      .option("--yes", "confirm the deletion", false),
  )
    .addHelpText("after", DB_HELP)
    .option("--export-file <file>", "where to write the history (default: <data dir>/deleted-keys-<time>.interchange.json)")
    .action(
      action(async (pubkeysIn: string[], flags: HsmFlags & DbFlags & { yes: boolean; exportFile?: string }) => {
        const pubkeys = [...new Set(pubkeysIn.map(normalizePubkey))];
        if (!flags.yes) throw new CliError("USAGE", `refusing to delete ${pubkeys.length} key(s) without --yes`, EXIT_CODES.usage);
        const location = keysDbLocation(flags);
        await withSignerStopped(flags.config, () =>
          withStore(flags, async (store) => {
            const stored = new Set((await store.list()).map((k) => k.pubkey));
            const missing = pubkeys.filter((p) => !stored.has(p));
            if (missing.length > 0) throw new KeyNotFoundError(`${missing.length} key(s) not on token "${store.tokenLabel}": ${abbreviate(missing)}`);
            const file = await exportHistory(location, pubkeys, flags.exportFile);
            console.error(`slashing-protection history of ${pubkeys.length} key(s) written to ${file}`);
            const { deleted } = await store.delete(pubkeys);
            for (const p of deleted) console.log(`deleted ${p}`);
            if (deleted.length > 0) await announceKeyChange(flags.config);
          }),
        );
      }),
    );
  return cmd;
}

/**
 * Runs `use` while holding the data-directory lock of the signer `configFile` describes (a `--workers` primary holds
 * it too), so that signer is known to be stopped and cannot start meanwhile. A running signer would go on signing
 * with the keys after their history was exported: the export would miss those signatures, and whoever imports it
 * could sign a slashable message. A keys-only config (no signer in it) is not checked.
 */
async function withSignerStopped<T>(configFile: string | undefined, use: () => Promise<T>): Promise<T> {
  let dataDir: string;
  try {
    if (configFile === undefined) return await use();
    dataDir = loadSignerConfig(configFile).dataDir;
  } catch {
    return await use(); // not a signer's config: nothing to check (its own errors are reported by the key commands)
  }
  if (!fs.existsSync(dataDir)) return await use(); // no signer ever ran there
  let lock: DataDirLock;
  try {
    lock = DataDirLock.acquire(dataDir);
  } catch (err) {
    if ((err as { code?: string }).code !== "DATA_DIR_IN_USE") throw err;
    const pid = (err as { holderPid?: number }).holderPid;
    throw new CliError(
      "SIGNER_RUNNING",
      `the signer of ${configFile} is running${pid !== undefined ? ` (pid ${pid})` : ""} and could sign with these keys after their history is exported: delete them through its keymanager API (DELETE /eth/v1/keystores stops signing and returns their history in one step), or stop it first`,
      EXIT_CODES.conflict,
    );
  }
  try {
    return await use();
  } finally {
    lock.release();
  }
}

/**
 * Writes the EIP-3076 history of `pubkeys` to a new 0600 file and returns its path. A database that is not
 * there is refused, never created empty: an empty export would let the keys go without their history.
 */
export async function exportHistory(location: SlashingDbLocation, pubkeys: string[], exportFile: string | undefined): Promise<string> {
  const file = exportFile ?? path.join(defaultDataDir(), `deleted-keys-${new Date().toISOString().replace(/[:.]/g, "-")}.interchange.json`);
  let json: string | undefined;
  await withAdmin(location, true, async (db) => {
    // Checked once the database is known to exist, so "no database" keeps answering first, as it always has.
    if (fs.existsSync(file)) throw new CliError("OUTPUT_EXISTS", `${file} already exists; not overwriting it`, EXIT_CODES.conflict);
    json = `${JSON.stringify(await db.exportInterchange({ pubkeys }), null, 2)}\n`;
  }).catch((err: unknown) => {
    if (!(err instanceof SlashingDbError && err.code === "DB_NOT_FOUND")) throw err;
    const where = location.kind === "sqlite" ? `no slashing database at ${location.path}` : `no Vigil slashing database at ${location.connection.url}`;
    throw new CliError("DB_NOT_FOUND", `${where}; the keys' history must be exported before deletion (use --db PATH or --db-url URL)`, EXIT_CODES.notFound);
  });
  ensurePrivateDir(path.dirname(path.resolve(file)));
  writeFilePrivateAtomic(file, json!);
  return file;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new InvalidKeystoreError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/** `vigil hsm …` and `vigil keys …`. */
export function keystoreCommands(): Command[] {
  return [hsmCommand(), keysCommand()];
}
