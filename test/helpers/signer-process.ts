/**
 * The real `vigil signer start` as a child process (dist/cli/main.js: run `npm run build` first): writes its
 * config, spawns it with its stdout wherever a test wants it, resolves its main URL from the "ready" line on
 * stderr, stops it with SIGTERM, and SIGKILLs whatever a failed test left running. One place for what several
 * signer tests need; test/helpers/signer-cluster.ts starts several of them on one database.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { GVR } from "../signer/harness.js";
import type { TestToken } from "./softhsm.js";

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/cli/main.js");

/** Writes a signer config for `token` with its data under `dataDir`; returns the file. */
export function writeSignerConfig(token: TestToken, dataDir: string, file: string, extra: Record<string, unknown> = {}): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const config = {
    network: "minimal-devnet",
    listen: { host: "127.0.0.1", port: 0 },
    dataDir,
    genesisValidatorsRoot: GVR,
    hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
    logLevel: "debug",
    ...extra,
  };
  fs.writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}

export interface SignerProcess {
  child: ChildProcess;
  stderr(): string;
  /** The main URL once "ready" is printed. */
  ready: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/** SIGKILLs every signer a test started that is still running (a failed assertion must not leave one behind). */
export function killLeftovers(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

/** `stdout`: "pipe" leaves a pipe the test never reads (a blocked reader); a number is an open fd to give it. */
export function spawnSigner(configFile: string, stdout: "pipe" | "ignore" | number): SignerProcess {
  const child = spawn(process.execPath, [CLI, "signer", "start", "--config", configFile], {
    env: process.env,
    stdio: ["ignore", stdout, "pipe"],
  });
  running.add(child);
  let err = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  const ready = new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /ready: \d+ key\(s\) on (\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    void exited.then(({ code, signal }) => reject(new Error(`signer exited (${code ?? signal}) before ready: ${err}`)));
  });
  ready.catch(() => {});
  return { child, stderr: () => err, ready, exited };
}

/** SIGTERM, then the exit code and how long it took (SIGKILL after `limitMs`, reported as signal SIGKILL). */
export async function stopWithSigterm(p: SignerProcess, limitMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now();
  p.child.kill("SIGTERM");
  const killer = setTimeout(() => p.child.kill("SIGKILL"), limitMs);
  const r = await p.exited;
  clearTimeout(killer);
  return { ...r, ms: Date.now() - started };
}
