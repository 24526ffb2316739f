/**
 * Several real `vigil signer start` processes sharing one PostgreSQL slashing database: each with its own
 * dataDir (lock, audit feed, tokens) and loopback port, all with the same keys from one SoftHSM2 token (read
 * only, which SoftHSM2 allows from several processes). Built on the one-process spawner of ./signer-process.ts,
 * so the ready-line parsing and leftover killing live in one place.
 */
import fs from "node:fs";
import path from "node:path";
import type { TestToken } from "./softhsm.js";
import { spawnSigner, writeSignerConfig, type SignerProcess } from "./signer-process.js";

export interface PostgresTarget {
  /** postgres://user@host:port/db, no password in it. */
  url: string;
  passwordFile: string;
  poolSize?: number;
}

export interface ClusterMember {
  readonly index: number;
  readonly configFile: string;
  /** The current process (replaced by restart). */
  process: SignerProcess;
  /** Its main URL, e.g. http://127.0.0.1:PORT (a restart listens on a new port). */
  url: string;
}

export interface SignerCluster {
  readonly members: ClusterMember[];
  /** SIGKILLs member `i` and waits until it is gone. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again on the same config and dataDir; resolves once it is ready. */
  restart(i: number): Promise<void>;
  /** SIGTERMs every running member and waits for them (SIGKILL after 20 s). */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  token: TestToken;
  count: number;
  postgres: PostgresTarget;
  /** Where each member's dataDir and config file go (`<work>/signer-<i>/`). */
  work: string;
  /** Extra config fields for every member (limits, logLevel…). */
  extra?: Record<string, unknown>;
}

/**
 * Starts `count` signer processes one after another, each once the previous one is ready: a SoftHSM2 login
 * rewrites the token's files, and a process enumerating the token directory meanwhile can find no token at all
 * (HSM_TOKEN_NOT_FOUND, "tokens present: none"; 8 of 40 concurrent pkcs11-tool logins failed so here).
 */
export async function startSignerCluster(opts: ClusterOptions): Promise<SignerCluster> {
  const configs = Array.from({ length: opts.count }, (_, i) => {
    const dir = path.join(opts.work, `signer-${i}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Each signer's own 0600 copy: the server's file may belong to the server's system user.
    const passwordFile = path.join(dir, "db.password");
    fs.writeFileSync(passwordFile, fs.readFileSync(opts.postgres.passwordFile), { mode: 0o600 });
    return writeSignerConfig(opts.token, path.join(dir, "data"), path.join(dir, "signer.json"), {
      slashingDb: { postgres: { url: opts.postgres.url, passwordFile, poolSize: opts.postgres.poolSize ?? 4 } },
      logLevel: "warn",
      ...opts.extra,
    });
  });
  const members: ClusterMember[] = [];
  for (const [index, configFile] of configs.entries()) {
    const started = spawnSigner(configFile, "ignore");
    try {
      members.push({ index, configFile, process: started, url: await started.ready });
    } catch (err) {
      for (const m of members) m.process.child.kill("SIGKILL");
      await Promise.all(members.map((m) => m.process.exited));
      throw err;
    }
  }
  const running = (m: ClusterMember) => m.process.child.exitCode === null && m.process.child.signalCode === null;
  return {
    members,
    async kill(i) {
      const m = members[i]!;
      m.process.child.kill("SIGKILL");
      await m.process.exited;
    },
    async restart(i) {
      const m = members[i]!;
      if (running(m)) throw new Error(`signer ${i} is still running`);
      m.process = spawnSigner(m.configFile, "ignore");
      m.url = await m.process.ready;
    },
    async stop() {
      await Promise.all(
        members.filter(running).map(async (m) => {
          m.process.child.kill("SIGTERM");
          const killer = setTimeout(() => m.process.child.kill("SIGKILL"), 20_000);
          await m.process.exited;
          clearTimeout(killer);
        }),
      );
    },
  };
}
