/**
 * `vigil slashing watermark …`: show the watermarks, raise the low ones, set and remove the high one (the cut-over
 * tool Web3Signer has: set it on the signer handing over, so it signs nothing the next one will). Every change is
 * confirmed unless --yes; a low watermark is never lowered.
 */
import readline from "node:readline/promises";
import { Command } from "commander";
import { EXIT_CODES } from "../common/index.js";
import type { HighWatermark, WatermarkReport } from "../slashing-db/index.js";
import { CliError } from "./errors.js";
import { action } from "./run.js";
import { collect, uint64 } from "./slashing.js";
import { dbLocationOrConfig, dbOptions, signerConfigOption, withAdmin, type DbFlags } from "./slashing-location.js";

type KeyFlags = DbFlags & { config?: string; pubkey: string[]; yes: boolean };
type MarkFlags = KeyFlags & { slot?: bigint; epoch?: bigint };

export function watermarkCommand(): Command {
  const cmd = new Command("watermark").description("show the watermarks; raise the low ones; set or remove the high one").addHelpText(
    "after",
    `
Low watermarks: nothing at or below them is signed (raised only, never lowered). The high watermark: no block
at or above its slot and no attestation at or above its epoch is signed (as Web3Signer's). For a cut-over, set
it on the database of the signer handing over, export, import into the next one, then remove it if ever the
old signer must sign again. Without --pubkey a change applies to every key (the high watermark: also to keys
the database has not seen yet, and GET /api/v1/eth2/highWatermark shows it); changes ask first unless --yes.
The database: --config <signer.json> (the one that signer uses, e.g. the embedded data/signer.json), or
--db FILE / --db-url URL.`,
  );

  keyed(dbLocated(cmd.command("show").description("each key's low watermarks and high watermark, and the all-keys high watermark")))
    .option("--json", "machine-readable output", false)
    .action(
      action(async (opts: KeyFlags & { json: boolean }) => {
        await withAdmin(dbLocationOrConfig(opts), true, async (db) => {
          const report = await db.watermarks(keysOf(opts));
          console.log(opts.json ? JSON.stringify(report, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2) : describe(report));
        });
      }),
    );

  raiseCommand(cmd.command("raise").description("raise the low watermarks (never lowers them)"));

  marked(keyed(dbLocated(cmd.command("set-high").description("set the high watermark (an omitted --slot/--epoch keeps the one set)"))), "high").action(
    action(async (opts: MarkFlags) => {
      requireMark(opts);
      await withAdmin(dbLocationOrConfig(opts), true, async (db) => {
        await confirm(opts, `set the high watermark of ${scope(opts)} to${markText(opts)}: from then on nothing at or above it is signed`);
        await db.setHighWatermark({ pubkeys: keysOf(opts), slot: opts.slot, epoch: opts.epoch });
        console.log(`high watermark set for ${scope(opts)}:${markText(opts)}`);
      });
    }),
  );

  keyed(dbLocated(cmd.command("remove-high").description("remove the high watermark (without --pubkey: every one, all-keys and per-key)"))).action(
    action(async (opts: KeyFlags) => {
      await withAdmin(dbLocationOrConfig(opts), true, async (db) => {
        await confirm(opts, `remove the high watermark of ${opts.pubkey.length ? `${opts.pubkey.length} key(s)` : "every key (all-keys and per-key ones)"}`);
        const n = await db.removeHighWatermark({ pubkeys: keysOf(opts) });
        console.log(`removed ${n} high watermark(s)${opts.pubkey.length ? " (the all-keys one, if any, still applies)" : ""}`);
      });
    }),
  );
  return cmd;
}

/**
 * `watermark raise`, and `vigil slashing raise-watermarks` (its older name, kept for scripts: the same command
 * with --yes implied, as it never asked). Raising never lowers, so it cannot weaken the protection.
 */
export function raiseCommand(cmd: Command, opts: { neverAsk?: boolean } = {}): Command {
  return marked(keyed(dbLocated(cmd)), "low").action(
    action(async (flags: MarkFlags) => {
      requireMark(flags);
      await withAdmin(dbLocationOrConfig(flags), flags.pubkey.length === 0, async (db) => {
        if (!opts.neverAsk) await confirm(flags, `raise the low watermarks of ${scope(flags)} to${markText(flags)}`);
        const n = await db.raiseWatermarks({ pubkeys: keysOf(flags), slot: flags.slot, epoch: flags.epoch });
        console.log(`raised the low watermarks of ${n} validator(s) (never lowered)`);
      });
    }),
  );
}

/** Where the database is: --config <signer.json>, or --db / --db-url as for every `vigil slashing` command. */
const dbLocated = (cmd: Command): Command => signerConfigOption(dbOptions(cmd));

function keyed(cmd: Command): Command {
  return cmd
    .option("--pubkey <pubkey>", "only this key (repeatable; default: every key)", collect, [] as string[])
    .option("--yes", "do not ask for confirmation", false);
}

function marked(cmd: Command, which: "low" | "high"): Command {
  return which === "low"
    ? cmd
        .option("--slot <n>", "no block at or below this slot is signed", uint64)
        .option("--epoch <n>", "no attestation with source below or target at or below this epoch is signed", uint64)
    : cmd
        .option("--slot <n>", "no block at or above this slot is signed", uint64)
        .option("--epoch <n>", "no attestation at or above this epoch is signed", uint64);
}

function requireMark(opts: MarkFlags): void {
  if (opts.slot === undefined && opts.epoch === undefined) throw new CliError("USAGE", "give --slot, --epoch or both", EXIT_CODES.usage);
}

const keysOf = (opts: KeyFlags): string[] | undefined => (opts.pubkey.length ? opts.pubkey : undefined);
const scope = (opts: KeyFlags): string => (opts.pubkey.length ? `${opts.pubkey.length} key(s)` : "every key");
const markText = (opts: MarkFlags): string => `${opts.slot === undefined ? "" : ` slot ${opts.slot}`}${opts.epoch === undefined ? "" : ` epoch ${opts.epoch}`}`;

async function confirm(opts: KeyFlags, question: string): Promise<void> {
  if (opts.yes) return;
  if (!process.stdin.isTTY) throw new CliError("USAGE", "not a terminal: pass --yes to proceed without confirmation", EXIT_CODES.usage);
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question}? [y/N] `)).trim().toLowerCase();
    if (answer !== "y" && answer !== "yes") throw new CliError("NOT_CONFIRMED", "not confirmed; nothing was changed", EXIT_CODES.usage);
  } finally {
    rl.close();
  }
}

const show = (v: bigint | null): string => (v === null ? "-" : v.toString());
const high = (h: HighWatermark | null): string => (h === null ? "none" : `slot ${show(h.slot)} epoch ${show(h.epoch)}`);

function describe(r: WatermarkReport): string {
  const lines = [`high watermark (every key): ${high(r.all)}`];
  if (r.validators.length === 0) lines.push("no validator in the database");
  for (const v of r.validators) {
    lines.push(
      `${v.pubkey}  low: block slot ${show(v.low.blockSlot)} source ${show(v.low.sourceEpoch)} target ${show(v.low.targetEpoch)}  high: ${high(v.high)}`,
    );
  }
  return lines.join("\n");
}
