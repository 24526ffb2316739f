/**
 * One signer process of the multi-process bench (./signer-multi.ts), forked with an IPC channel: the real
 * startSigner on a PostgreSQL slashing database, with the bench's in-memory key store (generating and
 * importing 10,000 keys into SoftHSM2 would measure the token). Parent → child: a SignerProcessJob, later
 * "cpu" (answered with the CPU time it has used, in ms) and "stop"; child → parent: { url, pubkeys } once
 * listening, then exits 0 after a clean close.
 */
import fs from "node:fs";
import path from "node:path";
import { startSigner } from "../../signer/index.js";
import { benchSignerConfig } from "./bench-config.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { InMemoryBenchKeyStore } from "./signer.js";

export interface SignerProcessJob {
  keys: number;
  dataDir: string;
  genesisValidatorsRoot: string;
  postgres: { url: string; passwordFile: string; poolSize: number };
  blsThreads: number;
  maxWaitMs: number;
}

export interface SignerProcessReady {
  url: string;
  pubkeys: string[];
}

async function run(job: SignerProcessJob): Promise<void> {
  fs.mkdirSync(job.dataDir, { recursive: true, mode: 0o700 });
  const config = benchSignerConfig({
    dataDir: job.dataDir,
    genesisValidatorsRoot: job.genesisValidatorsRoot,
    postgres: job.postgres,
    limits: { maxWaitMs: job.maxWaitMs, blsThreads: job.blsThreads },
  });
  const keyStore = new InMemoryBenchKeyStore(Array.from({ length: job.keys }, (_, i) => interopSecretKey(i)));
  const signer = await startSigner(config, { keyStore, logDestination: fs.createWriteStream(path.join(job.dataDir, "signer.log")) });
  process.on("message", (m: "cpu" | "stop") => {
    if (m === "cpu") {
      const cpu = process.cpuUsage();
      process.send!({ cpuMs: (cpu.user + cpu.system) / 1000 });
      return;
    }
    void signer.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  process.send!({ url: signer.url, pubkeys: signer.publicKeys.slice() } satisfies SignerProcessReady);
}

if (process.send) {
  process.once("message", (job: SignerProcessJob) => {
    run(job).catch((err: unknown) => {
      process.stderr.write(`bench signer process failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
  });
}
