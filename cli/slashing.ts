import fs from "node:fs";
import { Command } from "commander";
import { EXIT_CODES, defaultSlashingDbPath, writeFilePrivateAtomic } from "../common/index.js";
import { positiveInt } from "./options.js";
import { action } from "./run.js";
import { openSlashingDb, SlashingDbError, type SlashingDb } from "../slashing-db/index.js";

/** Epochs of history `prune` keeps per validator by default (about 18 days on mainnet). */
const DEFAULT_KEEP_EPOCHS = 4096;

/** `vigil slashing …`: operator commands for the slashing-protection database. */
export function slashingCommand(): Command {
  const cmd = new Command("slashing").description("slashing-protection database (EIP-3076): import, export, prune, stats");

  cmd
    .command("import")
    .description("import an EIP-3076 interchange file (all or nothing; merges with existing history)")
    .argument("<file>", "interchange JSON file (format version 5)")
    .option("--db <path>", "slashing-protection database", defaultSlashingDbPath())
    .action(
      action((file: string, opts: { db: string }) => {
        const text = readInput(file);
        withDb(opts.db, true, (db) => {
          const s = db.importInterchange(text);
          console.log(
            `imported ${s.validators} validator(s): ${s.blocksAdded} block(s), ${s.attestationsAdded} attestation(s) added` +
              (s.conflictsMadeUnknown ? `, ${s.conflictsMadeUnknown} conflicting record(s) kept with unknown root` : ""),
          );
        });
      }),
    );

  cmd
    .command("export")
    .description("export history as an EIP-3076 interchange (all keys, or those given)")
    .option("--db <path>", "slashing-protection database", defaultSlashingDbPath())
    .option("--pubkey <pubkey>", "export only this key (repeatable)", collect, [] as string[])
    .option("--minify", "export only the newest block and the highest source/target per key", false)
    .option("--out <file>", "write to this file (created 0600) instead of standard output")
    .action(
      action((opts: { db: string; pubkey: string[]; minify: boolean; out?: string }) => {
        withDb(opts.db, false, (db) => {
          const interchange = db.exportInterchange({ pubkeys: opts.pubkey.length ? opts.pubkey : undefined, minify: opts.minify });
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

  cmd
    .command("prune")
    .description("delete old history, raising low watermarks so protection is unchanged, and shrink the file")
    .option("--db <path>", "slashing-protection database", defaultSlashingDbPath())
    .option("--keep-epochs <n>", "epochs of history to keep per validator", positiveInt, DEFAULT_KEEP_EPOCHS)
    .option("--slots-per-epoch <n>", "32 on mainnet, 8 on minimal-preset dev chains", positiveInt, 32)
    .action(
      action((opts: { db: string; keepEpochs: number; slotsPerEpoch: number }) => {
        withDb(opts.db, false, (db) => {
          const before = db.stats().fileBytes;
          const s = db.prune({ keepEpochs: opts.keepEpochs, slotsPerEpoch: opts.slotsPerEpoch });
          const after = db.stats().fileBytes;
          console.log(
            `pruned ${s.validators} validator(s): ${s.blocksDeleted} block(s), ${s.attestationsDeleted} attestation(s) deleted; ` +
              `file ${before} -> ${after} bytes`,
          );
        });
      }),
    );

  cmd
    .command("stats")
    .description("show what the database holds")
    .option("--db <path>", "slashing-protection database", defaultSlashingDbPath())
    .option("--json", "machine-readable output", false)
    .action(
      action((opts: { db: string; json: boolean }) => {
        withDb(opts.db, false, (db) => {
          const s = db.stats();
          if (opts.json) {
            console.log(JSON.stringify(s, null, 2));
            return;
          }
          console.log(`database:                ${s.path}`);
          console.log(`schema version:          ${s.schemaVersion}`);
          console.log(`genesis_validators_root: ${s.genesisValidatorsRoot ?? "(not pinned yet)"}`);
          console.log(`validators:              ${s.validators}`);
          console.log(`signed blocks:           ${s.blocks}`);
          console.log(`signed attestations:     ${s.attestations}`);
          console.log(`size on disk:            ${s.fileBytes} bytes`);
        });
      }),
    );

  return cmd;
}

function withDb(path: string, create: boolean, use: (db: SlashingDb) => void): void {
  if (!create && !fs.existsSync(path)) {
    throw new SlashingDbError("DB_NOT_FOUND", `no slashing database at ${path} (use --db PATH)`, EXIT_CODES.notFound);
  }
  const db = openSlashingDb(path);
  try {
    use(db);
  } finally {
    db.close();
  }
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

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
