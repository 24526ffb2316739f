/**
 * The signer config every bench runs: mainnet on loopback, a port of the OS's choosing, limits high enough that the
 * bench measures the signer and not its load shedding. The `hsm` section is required by the config format but
 * never opened: the benches pass their own in-memory key store (./signer.ts, InMemoryBenchKeyStore).
 */
import { parseSignerConfig, type SignerConfig } from "../../signer/index.js";

export interface BenchSignerConfigOptions {
  dataDir: string;
  genesisValidatorsRoot: string;
  /** Absent: the SQLite file in dataDir. */
  postgres?: { url: string; passwordFile: string; poolSize: number };
  /** Overrides of the bench's limits (maxQueueDepth 65,536 and maxConnections 60,000 by default). */
  limits?: Record<string, number | undefined>;
  workers?: number;
}

export function benchSignerConfig(opts: BenchSignerConfigOptions): SignerConfig {
  const limits = Object.fromEntries(Object.entries({ maxQueueDepth: 65_536, maxConnections: 60_000, ...opts.limits }).filter(([, v]) => v !== undefined));
  return parseSignerConfig({
    network: "mainnet",
    genesisValidatorsRoot: opts.genesisValidatorsRoot,
    listen: { host: "127.0.0.1", port: 0 },
    dataDir: opts.dataDir,
    hsm: { module: "/nonexistent/bench-only.so", tokenLabel: "bench", pin: { env: "VIGIL_BENCH_UNUSED_PIN" } },
    ...(opts.postgres ? { slashingDb: { postgres: opts.postgres } } : {}),
    limits,
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
    logLevel: "warn",
  });
}
