import fs from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { EXIT_CODES, writeFilePrivateAtomic } from "../common/index.js";
import { positiveInt } from "./options.js";
import { action } from "./run.js";
import { copyHistory, migratePg, SlashingDbError, withStartupExitCode, type SlashingDbAdminStats } from "../slashing-db/index.js";
import { CliError } from "./errors.js";
import { raiseCommand, watermarkCommand } from "./slashing-watermark.js";
import {
  dbLocation,
  dbLocationOrConfig,
  dbOptions,
  fileOrUrlLocation,
  PASSWORD_FILE_ENV,
  signerConfigOption,
  tlsMode,
  tlsOf,
  withAdmin,
  type DbFlags,
} from "./slashing-location.js";

/** Epochs of history `prune` keeps per validator by default (about 18 days on mainnet). */
const DEFAULT_KEEP_EPOCHS = 4096;

const WHERE_HELP = `
The database: --db FILE (SQLite, the default) or --db-url postgres://user@host:port/db with the role's
password in a 0600 file (--db-password-file FILE, or ${PASSWORD_FILE_ENV}=FILE); a password is never
accepted on the command line or in the URL. import, export, prune, stats, raise-watermarks and watermark
also take --config FILE: the database the signer's config names, resolved as the signer does (the
embedded data/signer.json too). Exit codes: 40 server unreachable, 41 authentication failed, 42 the
database belongs to another network (import, copy), 43 schema newer than this Vigil, 44 server not
durable (synchronous_commit off/local).`;

/** The database flags, plus --config: the database the signer's config names (as `vigil slashing watermark`). */
const located = (cmd: Command): Command => signerConfigOption(dbOptions(cmd));
type LocatedFlags = DbFlags & { config?: string };

/** `vigil slashing …`: operator commands for the slashing-protection database. */
export function slashingCommand(): Command {
  const cmd = new Command("slashing")
    .description("slashing-protection database (EIP-3076): import, export, prune, stats, raise-watermarks, watermark, migrate, copy")
    .addHelpText("after", WHERE_HELP);

  located(
    cmd
      .command("import")
      .description("import an EIP-3076 interchange file (all or nothing; merges with existing history)")
      .argument("<file>", "interchange JSON file (format version 5)"),
  ).action(
    action(async (file: string, opts: LocatedFlags) => {
      const text = readInput(file);
      await withAdmin(dbLocationOrConfig(opts), false, async (db) => {
        const s = await db.importInterchange(text);
        console.log(
          `imported ${s.validators} validator(s): ${s.blocksAdded} block(s), ${s.attestationsAdded} attestation(s) added` +
            (s.conflictsMadeUnknown ? `, ${s.conflictsMadeUnknown} conflicting record(s) kept with unknown root` : ""),
        );
      });
    }),
  );

  located(cmd.command("export").description("export history as an EIP-3076 interchange (all keys, or those given)"))
    .option("--pubkey <pubkey>", "export only this key (repeatable)", collect, [] as string[])
    .option("--minify", "export only the newest block and the highest source/target per key", false)
    .option("--out <file>", "write to this file (created 0600) instead of standard output")
    .action(
      action(async (opts: LocatedFlags & { pubkey: string[]; minify: boolean; out?: string }) => {
        await withAdmin(dbLocationOrConfig(opts), true, async (db) => {
          const interchange = await db.exportInterchange({ pubkeys: opts.pubkey.length ? opts.pubkey : undefined, minify: opts.minify });
          const json = `${JSON.stringify(interchange, null, 2)}\n`;
          if (opts.out) {
            writeFilePrivateAtomic(opts.out, json);
            console.error(`exported ${interchange.data.length} validator(s) to ${opts.out}`);
          } else {
            process.stdout.write(json);
          }
        });
      }),
    );

  located(
    cmd
      .command("prune")
      .description("delete old history, raising low watermarks so protection is unchanged (SQLite: and shrink the file); safe while signers run on PostgreSQL"),
  )
    .option("--keep-epochs <n>", "epochs of history to keep per validator", positiveInt, DEFAULT_KEEP_EPOCHS)
    .option("--slots-per-epoch <n>", "32 on mainnet, 8 on minimal-preset dev chains", positiveInt, 32)
    .action(
      action(async (opts: LocatedFlags & { keepEpochs: number; slotsPerEpoch: number }) => {
        await withAdmin(dbLocationOrConfig(opts), true, async (db) => {
          const before = sizeOf(await db.stats());
          const s = await db.prune({ keepEpochs: opts.keepEpochs, slotsPerEpoch: opts.slotsPerEpoch });
          const after = sizeOf(await db.stats());
          console.log(
            `pruned ${s.validators} validator(s): ${s.blocksDeleted} block(s), ${s.attestationsDeleted} attestation(s) deleted; ` +
              `${db.backend === "sqlite" ? "file" : "database"} ${before} -> ${after} bytes`,
          );
        });
      }),
    );

  located(cmd.command("stats").description("show what the database holds"))
    .option("--json", "machine-readable output", false)
    .action(
      action(async (opts: LocatedFlags & { json: boolean }) => {
        await withAdmin(dbLocationOrConfig(opts), true, async (db) => {
          const s = await db.stats();
          if (opts.json) {
            console.log(JSON.stringify(s, null, 2));
            return;
          }
          console.log(`database:                ${s.backend === "sqlite" ? s.path : s.url}`);
          console.log(`schema version:          ${s.schemaVersion}`);
          console.log(`genesis_validators_root: ${s.genesisValidatorsRoot ?? "(not pinned yet)"}`);
          console.log(`validators:              ${s.validators}`);
          console.log(`signed blocks:           ${s.blocks}`);
          console.log(`signed attestations:     ${s.attestations}`);
          console.log(`size on disk:            ${sizeOf(s)} bytes${s.backend === "postgres" ? " (pg_database_size)" : ""}`);
        });
      }),
    );

  raiseCommand(
    cmd
      .command("raise-watermarks")
      .description(
        "the same as `vigil slashing watermark raise --yes`: refuse, from now on, every block at or below a slot and every attestation below / at or below an epoch",
      ),
    { neverAsk: true },
  );

  cmd.addCommand(watermarkCommand());

  cmd
    .command("migrate")
    .description("create or upgrade the PostgreSQL schema, then exit (idempotent; safe when run twice at once)")
    .requiredOption("--db-url <url>", "postgres://user@host:port/db (never a password in it)")
    .option("--db-password-file <file>", `file (mode 0600) holding the role's password (or set ${PASSWORD_FILE_ENV})`)
    .option("--db-tls <mode>", "TLS: disable (default), require (encrypt, any certificate), verify-full", tlsMode)
    .option("--db-tls-ca <file>", "PEM file of the CA that signed the server's certificate (implies --db-tls verify-full)")
    .action(
      action(async (opts: DbFlags) => {
        const location = dbLocation(opts);
        if (location.kind !== "postgres") throw new CliError("USAGE", "migrate is for PostgreSQL (--db-url)", EXIT_CODES.usage);
        const { before, after } = await migratePg(location.connection).catch((err: unknown) => Promise.reject(withStartupExitCode(err)));
        console.log(before === after ? `schema version ${after}: already current` : `schema version ${before} -> ${after}`);
      }),
    );

  cmd
    .command("copy")
    .description("copy a whole history between databases (SQLite file or PostgreSQL URL, either way), then verify it")
    .requiredOption("--from <file|url>", "source: a SQLite file, or postgres://user@host:port/db")
    .requiredOption("--to <file|url>", "destination: a SQLite file (created if missing), or postgres://user@host:port/db")
    .option("--from-password-file <file>", "0600 file with the source role's password (PostgreSQL)")
    .option("--to-password-file <file>", "0600 file with the destination role's password (PostgreSQL)")
    .option("--from-tls <mode>", "source TLS: disable (default), require, verify-full", tlsMode)
    .option("--from-tls-ca <file>", "source server's CA (implies --from-tls verify-full)")
    .option("--to-tls <mode>", "destination TLS: disable (default), require, verify-full", tlsMode)
    .option("--to-tls-ca <file>", "destination server's CA (implies --to-tls verify-full)")
    .addHelpText(
      "after",
      `
Stop every signer that uses either database first. Every record and low watermark is copied in one
transaction; a destination pinned to another network is refused (exit 42). Verified afterwards by exporting
both sides and comparing (order aside); a difference exits 1 and lists what differs.`,
    )
    .action(
      action(async (opts: CopyFlags) => {
        const from = fileOrUrlLocation(opts.from, opts.fromPasswordFile, "--from", tlsOf(opts.fromTls, opts.fromTlsCa, "--from-tls"));
        const to = fileOrUrlLocation(opts.to, opts.toPasswordFile, "--to", tlsOf(opts.toTls, opts.toTlsCa, "--to-tls"));
        if (from.kind === "sqlite" && !fs.existsSync(from.path)) {
          throw new SlashingDbError("DB_NOT_FOUND", `no slashing database at ${from.path} (--from)`, EXIT_CODES.notFound);
        }
        await withAdmin(from, true, (source) =>
          withAdmin(to, false, async (dest) => {
            const r = await copyHistory(source, dest);
            const what = `${r.validators} validator(s), ${r.blocks} block(s), ${r.attestations} attestation(s), ${r.watermarks} validator(s) with low watermarks`;
            if (r.differences.length > 0) {
              throw new CliError(
                "COPY_NOT_VERIFIED",
                `copied ${what}, but the destination differs from the source (${r.differences.length}): ${r.differences.slice(0, 5).join("; ")}`,
                EXIT_CODES.failed,
              );
            }
            console.log(`copied ${what} from ${source.location} to ${dest.location}${r.destinationWasEmpty ? "" : " (merged into existing history)"}`);
            console.log(
              `verified: ${r.destinationWasEmpty ? "both databases export the same interchange" : "the destination holds every source record and watermark"}`,
            );
          }),
        );
      }),
    );

  return cmd;
}

type CopyFlags = {
  from: string;
  to: string;
  fromPasswordFile?: string;
  toPasswordFile?: string;
  fromTls?: ReturnType<typeof tlsMode>;
  fromTlsCa?: string;
  toTls?: ReturnType<typeof tlsMode>;
  toTlsCa?: string;
};

function sizeOf(s: SlashingDbAdminStats): number {
  return s.backend === "sqlite" ? s.fileBytes : s.databaseBytes;
}

function readInput(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new SlashingDbError(
      "FILE_NOT_READABLE",
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      EXIT_CODES.notFound,
    );
  }
}

export function uint64(value: string): bigint {
  if (!/^\d{1,20}$/.test(value) || BigInt(value) > 2n ** 63n - 1n) throw new InvalidArgumentError("expected a slot or epoch (a whole number)");
  return BigInt(value);
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
