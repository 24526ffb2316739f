/** `vigil signer …`: run the HTTP remote signer (Web3Signer-compatible) and check its config. */
import { Command, InvalidArgumentError, Option } from "commander";
import { CliError } from "./errors.js";
import { positiveInt, withLogStyleOptions } from "./options.js";
import { action, exitWithError } from "./run.js";
import { defaultDataDir, EXIT_CODES, runDaemon } from "../common/index.js";
import { probePostgres } from "../slashing-db/index.js";
import {
  checkWorkersBackend,
  NETWORK_NAMES,
  clientInstructions,
  DataDirLock,
  loadSignerConfig,
  MAX_WORKERS,
  runSignerWorker,
  setUpEmbedded,
  startSigner,
  startWorkers,
  workerConfig,
  workerSlot,
  type SignerConfig,
} from "../signer/index.js";

interface StartFlags {
  config?: string;
  embedded: boolean;
  dataDir?: string;
  network: string;
  keys: number;
  host?: string;
  port?: number;
  logLevel?: SignerConfig["logLevel"];
  logFormat?: SignerConfig["logFormat"];
  logTimestamp?: SignerConfig["logTimestamp"];
  workers?: number;
}

function workerCount(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_WORKERS) throw new InvalidArgumentError(`expected a number of processes (1-${MAX_WORKERS})`);
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("expected a port number (0-65535)");
  return n;
}

export function signerCommand(): Command {
  const cmd = new Command("signer").description("the HTTP remote signer (Web3Signer-compatible) with slashing protection");

  withLogStyleOptions(
    cmd
      .command("start")
      .description("start the signer from a config file, or from the embedded default (--embedded)")
      .option("--config <file>", "signer config file (JSON; see signer/docs/config.md)")
      .option("--embedded", "create (first run) or reuse a SoftHSM2 token, keys, database and config under the data directory", false)
      .option("--data-dir <dir>", "data directory for --embedded (default $VIGIL_DATA_DIR or ./data)")
      .option(
        "--network <name|file>",
        `network for --embedded: ${NETWORK_NAMES.join(", ")}, or a consensus-spec config.yaml (custom network; preset from its PRESET_BASE)`,
        "mainnet",
      )
      .option("--keys <n>", "keys to generate for --embedded when the token has none", positiveInt, 4)
      .option(
        "--host <host>",
        "listen address (overrides the config); requests whose Host is not localhost, 127.0.0.1, [::1] or this address are refused unless listed in http.hostAllowlist",
      )
      .option("--port <port>", "listen port (overrides the config)", port)
      .addOption(new Option("--log-level <level>", "log level (overrides the config)").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"])),
    { format: '"logFormat"', timestamp: '"logTimestamp"' },
  )
    .option(
      "--workers <n>",
      'signer processes sharing the listening ports, 1 to 256 (overrides the config\'s "workers"; default 1); more than 1 needs the PostgreSQL slashing database',
      workerCount,
    )
    .addHelpText(
      "after",
      "\nOn SIGTERM/SIGINT it stops accepting, commits what is in flight, closes everything and exits 0, or 30 if the\n" +
        "slashing database could not be closed cleanly (disk full, read-only). A second signal exits at once (128+n).\n" +
        "SIGHUP (systemctl reload) or POST /reload enumerates the token again: new keys become signable, removed ones\n" +
        "stop once their in-flight requests are answered; GET /reload shows the state (signer/docs/config.md).\n\n" +
        "--workers N: one process's event loop caps a big host well below its BLS threads; with N, N complete signers\n" +
        "(node:cluster workers) accept on the same ports, each with its own data directory under dataDir/workers/,\n" +
        "ceil(cores/N) BLS threads unless limits.blsThreads says otherwise, and the shared PostgreSQL database (a SQLite\n" +
        "file has one writer: refused with exit 3). A worker that dies is restarted; one that keeps failing to start\n" +
        "stops the group with its exit code. Metrics cover every worker (label worker). See signer/cluster/README.md.",
    )
    .action(
      action(async (flags: StartFlags) => {
        if ((flags.config === undefined) === !flags.embedded) {
          throw new CliError("USAGE", "give either --config FILE or --embedded", EXIT_CODES.usage);
        }
        let config: SignerConfig;
        let lock: DataDirLock | undefined;
        if (flags.embedded && (flags.workers ?? 1) > 1) {
          // Before the first run creates anything: --embedded always uses a SQLite file.
          throw new CliError("USAGE", "--workers above 1 needs the PostgreSQL slashing database; --embedded uses a SQLite file", EXIT_CODES.invalidInput);
        }
        if (flags.embedded) {
          // Locked before the first run creates anything in it: two first runs must not both create a token.
          lock = DataDirLock.acquire(flags.dataDir ?? defaultDataDir());
          const setup = await setUpEmbedded({
            dataDir: flags.dataDir ?? defaultDataDir(),
            network: flags.network,
            keys: flags.keys,
            ...(flags.host !== undefined ? { host: flags.host } : {}),
            ...(flags.port !== undefined ? { port: flags.port } : {}),
            say: (line) => process.stderr.write(`vigil: ${line}\n`),
          });
          config = setup.config;
        } else {
          config = loadSignerConfig(flags.config!);
          if (flags.host !== undefined) config.listen.host = flags.host;
          if (flags.port !== undefined) config.listen.port = flags.port;
        }
        if (flags.logLevel !== undefined) config.logLevel = flags.logLevel;
        if (flags.logFormat !== undefined) config.logFormat = flags.logFormat;
        if (flags.logTimestamp !== undefined) config.logTimestamp = flags.logTimestamp;
        if (flags.workers !== undefined) config.workers = flags.workers;
        checkWorkersBackend(config);
        const slot = workerSlot();
        if (slot !== undefined) await runSignerWorker(slot, config.dataDir, (hooks) => startSigner(workerConfig(config, slot), { cluster: hooks }));
        else if (config.workers > 1) await runWorkers(config, lock);
        else await run(config, lock);
      }),
    );

  cmd
    .command("check-config")
    .description("validate a signer config file and print it resolved (nothing is opened or started; no secret is printed)")
    .requiredOption("--config <file>", "signer config file")
    .option(
      "--connect",
      "also connect to a PostgreSQL slashing database and check it as a start would (reachable, password, synchronous_commit, schema version, network pin), writing nothing",
      false,
    )
    .addHelpText(
      "after",
      "\nWith --connect, a refusal exits as a start would: 40 unreachable, 41 authentication, 42 another network, 43 schema too new, 44 not durable.",
    )
    .action(
      action(async (flags: { config: string; connect: boolean }) => {
        const config = loadSignerConfig(flags.config);
        console.log(JSON.stringify({ ...config, network: config.network.name }, null, 2));
        if (flags.connect && config.slashingDb.kind === "postgres") {
          const found = await probePostgres(config.slashingDb.connection, config.genesisValidatorsRoot);
          process.stderr.write(
            `vigil: PostgreSQL slashing database OK: synchronous_commit=${found.synchronousCommit}, schema ${found.schemaVersion ?? "none yet"} (this Vigil: ${found.supportedSchemaVersion}), network ${found.genesisValidatorsRoot ?? "not pinned yet"}\n`,
          );
        }
      }),
    );
  return cmd;
}

/**
 * SIGHUP reloads the keys (as POST /reload does) instead of killing the signer, from the moment the process
 * runs: before the signer is ready it is ignored (the start loads the token as it is then).
 */
function reloadOnSighup(): (reload: () => void) => void {
  let reload = (): void => {
    process.stderr.write("vigil: SIGHUP while starting: ignored (the start loads every key on the token)\n");
  };
  process.on("SIGHUP", () => reload());
  return (r) => {
    reload = r;
  };
}

/**
 * Runs the signer as a daemon (config/daemon.ts): STATUS= progress and READY=1 once keys are loaded and the
 * database is open, WATCHDOG=1 while healthy, SIGTERM → graceful close → exit 0, a second signal exits at once.
 */
async function run(config: SignerConfig, dataDirLock?: DataDirLock): Promise<void> {
  const onSighup = reloadOnSighup();
  await runDaemon({
    name: "signer",
    start: async (hooks) => {
      const signer = await startSigner(config, {
        ...(dataDirLock ? { dataDirLock } : {}),
        status: (text) => {
          process.stderr.write(`vigil: ${text}\n`);
          hooks.status(text);
        },
      });
      process.stderr.write(`\n${clientInstructions(signer.url)}\n\n`);
      onSighup(() => {
        if (!signer.startReload()) process.stderr.write("vigil: SIGHUP: a key reload is already running\n");
      });
      return signer;
    },
    liveness: (signer) => signer.healthy() || "slashing database or BLS workers not answering",
    readyStatus: (signer) => `ready: ${signer.publicKeys.length} key(s) on ${signer.url}`,
    runningStatus: (signer) => {
      const s = signer.stats();
      return `${s.keys} key(s); since start ${s.signed} signed, ${s.refused} refused; ${s.inFlight} in flight`;
    },
  });
}

/**
 * `--workers N`: this process is the primary (signer/cluster/supervisor.ts). It holds the data directory's lock
 * (a second group on it stops here), forks the workers one after another and speaks to systemd for them all:
 * READY=1 once every worker is ready, WATCHDOG=1 while every running worker answers and is healthy.
 */
async function runWorkers(config: SignerConfig, dataDirLock?: DataDirLock): Promise<void> {
  const lock = dataDirLock ?? DataDirLock.acquire(config.dataDir);
  const say = (text: string) => process.stderr.write(`vigil: ${text}\n`);
  const onSighup = reloadOnSighup();
  await runDaemon({
    name: "signer",
    start: async (hooks) => {
      const workers = await startWorkers({
        workers: config.workers,
        signal: hooks.signal,
        status: (text) => {
          say(text);
          hooks.status(text);
        },
        log: (level, message) => say(level === "info" ? message : `${level}: ${message}`),
        onGiveUp: (err) => {
          lock.release();
          exitWithError(err);
        },
      });
      const ready = `ready: ${workers.keys()} key(s) on ${workers.url} (${config.workers} workers)`;
      say(ready);
      process.stderr.write(`\n${clientInstructions(workers.url)}\n\n`);
      onSighup(() => {
        say("SIGHUP: every worker reloads the keys from the key store");
        workers.reloadKeys().then(
          () => say(`keys reloaded: ${workers.keys()} key(s)`),
          (err: Error) => say(`error: key reload: ${err.message}`),
        );
      });
      return {
        ...workers,
        close: () => workers.close().finally(() => lock.release()),
      };
    },
    liveness: (workers) => workers.healthy(),
    readyStatus: (workers) => `ready: ${workers.keys()} key(s) on ${workers.url} (${config.workers} workers)`,
    runningStatus: (workers) => workers.statusLine(),
  });
}
