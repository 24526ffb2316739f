// Building blocks of the end-to-end scenarios: Vigil's own processes (`vigil signer start`, `vigil watchdog
// start`, run exactly as systemd would, with a fake NOTIFY_SOCKET), Lodestar's devnet (run-devnet.sh), a
// watcher of the beacon chain, and the independent checks on what the signer released.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { promisify } from "node:util";
import { PublicKey, SecretKey, Signature, verify } from "@chainsafe/blst";
import { freePort } from "../helpers/ports.js";
import { loadUnixDgram } from "../../common/systemd-notify.js";
import { openSlashingDb } from "../../slashing-db/index.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { fakeNotifySocket, type FakeNotifySocket } from "../helpers/notify-socket.js";
import { createToken, SOFTHSM_MODULE, type TestToken } from "../helpers/softhsm.js";
import { writeKeystores } from "../keystore/fixtures.js";
import { REPO_ROOT } from "./lodestar.js";
import type { ClientView, SignatureRecord, SignaturesResponse } from "../../admin-api/index.js";

export const VIGIL = path.join(REPO_ROOT, "bin/vigil.js");
const execFileAsync = promisify(execFile);
export const SLOT_SECONDS = Number(process.env.VIGIL_E2E_SLOT ?? 2);
export const SLOTS_PER_EPOCH = 8; // minimal preset
export const VALIDATORS = 8;

const t0 = Date.now();
export function say(line: string): void {
  process.stdout.write(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs: number,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** True when the notify transport (unix-dgram) is installed: then readiness is awaited the systemd way. */
export const NOTIFY_AVAILABLE = !("error" in loadUnixDgram());

// --- processes ------------------------------------------------------------------------------------------

export interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/** Spawns a process with stdout and stderr appended to `<dir>/<name>.log` (and kept in memory, bounded). */
export function spawnLogged(name: string, dir: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): Proc {
  const logFile = path.join(dir, `${name}.log`);
  const out = fs.createWriteStream(logFile, { flags: "a" });
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const proc: Proc = { name, child, logFile, lines, exited: undefined as never, exitStatus: undefined };
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.pipe(out, { end: false });
    readline.createInterface({ input: stream }).on("line", (l) => {
      lines.push(l);
      if (lines.length > 5_000) lines.splice(0, 1_000);
    });
  }
  proc.exited = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      proc.exitStatus = { code, signal };
      setTimeout(() => out.end(), 100);
      resolve({ code, signal });
    }),
  );
  return proc;
}

/** Sends `signal`, waits up to `timeoutMs` for the exit, then SIGKILLs. Returns how it ended. */
export async function stopProc(
  p: Proc,
  signal: NodeJS.Signals = "SIGTERM",
  timeoutMs = 30_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now();
  if (p.exitStatus) return { ...p.exitStatus, ms: 0 };
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  const r = await p.exited;
  clearTimeout(timer);
  return { ...r, ms: Date.now() - started };
}

/** Every descendant of `pid` (through /proc), deepest last. `timeout` puts its child in a process group of its own. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export function killTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of [pid, ...descendants(pid)]) {
    try {
      process.kill(p, signal);
    } catch {
      /* already gone */
    }
  }
}

// --- keys on a SoftHSM2 token, through the CLI ------------------------------------------------------------

export interface E2eToken {
  token: TestToken;
  hsm: { module: string; tokenLabel: string; pin: { file: string } };
  pubkeys: string[];
}

/** Derived with blst here, independently of the signer's code. */
export function interopPubkeyHex(i: number): string {
  return `0x${Buffer.from(SecretKey.fromBytes(interopSecretKey(i)).toPublicKey().toBytes()).toString("hex")}`;
}

/**
 * A fresh SoftHSM2 token holding the interop keys 0..count-1, imported the way an operator does it: EIP-2335
 * keystores on disk, `vigil hsm init`, `vigil keys import`.
 */
export async function tokenWithInteropKeysViaCli(label: string, count: number, dir: string): Promise<E2eToken> {
  const token = createToken(label);
  const keystores = path.join(dir, "keystores");
  const keys = Array.from({ length: count }, (_, i) => ({ secret: interopSecretKey(i), pubkey: interopPubkeyHex(i) }));
  await writeKeystores(keystores, keys, { password: "e2e keystore password" });
  const passwordFile = path.join(dir, "keystore-password.txt");
  fs.writeFileSync(passwordFile, "e2e keystore password\n", { mode: 0o600 });
  const hsmFlags = ["--module", SOFTHSM_MODULE, "--token-label", label, "--pin-file", token.pinFile];
  // Asynchronous: a test worker blocked for long misses vitest's worker RPC deadline (60 s).
  const vigil = async (args: string[]) => (await execFileAsync(process.execPath, [VIGIL, ...args], { encoding: "utf8" })).stdout;
  say((await vigil(["hsm", "init", ...hsmFlags])).trim());
  say((await vigil(["keys", "import", "--keystores", keystores, "--password-file", passwordFile, ...hsmFlags])).trim());
  const listed = JSON.parse(await vigil(["keys", "list", "--json", ...hsmFlags])) as string[];
  fs.rmSync(keystores, { recursive: true, force: true });
  return { token, hsm: { module: SOFTHSM_MODULE, tokenLabel: label, pin: { file: token.pinFile } }, pubkeys: listed };
}

// --- the signer -------------------------------------------------------------------------------------------

export interface SignerProc {
  proc: Proc;
  url: string;
  clientUrls: Record<string, string>;
  adminToken: string;
  dataDir: string;
  slashingDb: string;
  notify: FakeNotifySocket | undefined;
  configFile: string;
}

/**
 * `vigil signer start --config …` with one dedicated loopback listener per client (Lodestar 1.5.1 cannot
 * authenticate). `extra`: more config fields (a PostgreSQL slashingDb, http.hostAllowlist…); `clientExtra`: more
 * fields of each client's entry (initiallyEnabled…).
 */
export async function startSignerProcess(
  dir: string,
  token: E2eToken,
  clientIds: string[],
  opts: { extra?: Record<string, unknown>; clientExtra?: Record<string, Record<string, unknown>> } = {},
): Promise<SignerProc> {
  const dataDir = path.join(dir, "signer");
  const mainPort = await freePort();
  const clients = await Promise.all(
    clientIds.map(async (id) => ({ id, listen: { host: "127.0.0.1", port: await freePort() }, keys: "*", ...opts.clientExtra?.[id] })),
  );
  const adminToken = crypto.randomBytes(24).toString("hex");
  const adminTokenFile = path.join(dir, "admin.token");
  fs.writeFileSync(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
  const config = {
    network: "minimal-devnet",
    listen: { host: "127.0.0.1", port: mainPort },
    dataDir,
    hsm: token.hsm,
    admin: { tokenFile: adminTokenFile },
    clients,
    metrics: { enabled: true },
    logLevel: "info",
    ...opts.extra,
  };
  const configFile = path.join(dir, "signer.json");
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const url = `http://127.0.0.1:${mainPort}`;
  return {
    ...(await launchSigner(dir, configFile, url)),
    url,
    clientUrls: Object.fromEntries(clients.map((c) => [c.id, `http://127.0.0.1:${c.listen.port}`])),
    adminToken,
    dataDir,
    slashingDb: path.join(dataDir, "slashing-protection.sqlite"),
    configFile,
  };
}

/** Starts a stopped (or killed) signer again on its config: same ports, dataDir and database; resolves once ready. */
export async function restartSignerProcess(signer: SignerProc): Promise<void> {
  if (!signer.proc.exitStatus) throw new Error("the signer is still running");
  signer.notify?.close();
  Object.assign(signer, await launchSigner(path.dirname(signer.configFile), signer.configFile, signer.url));
}

/** Spawns `vigil signer start --config` (its log appended to `<dir>/signer.log`) and waits for READY=1 (or /upcheck). */
async function launchSigner(dir: string, configFile: string, url: string): Promise<{ proc: Proc; notify: FakeNotifySocket | undefined }> {
  const notify = NOTIFY_AVAILABLE ? await fakeNotifySocket() : undefined;
  const env: NodeJS.ProcessEnv = notify ? { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: "10000000" } : {};
  const started = Date.now();
  const proc = spawnLogged("signer", dir, process.execPath, [VIGIL, "signer", "start", "--config", configFile], env);
  const failed = proc.exited.then((r) => {
    throw new Error(`the signer exited during start-up (${JSON.stringify(r)}); see ${proc.logFile}`);
  });
  if (notify) {
    await Promise.race([notify.waitFor((a) => a === "READY=1", 120_000, "READY=1 from the signer"), failed]);
    say(`signer READY=1 after ${Date.now() - started} ms (${notify.assignments().filter((a) => a.startsWith("STATUS=")).length} STATUS= lines before it)`);
  } else {
    say("unix-dgram is not installed: waiting for the signer by polling /upcheck instead of its READY=1");
    await Promise.race([
      waitFor(
        "signer /upcheck",
        () =>
          fetch(`${url}/upcheck`).then(
            (r) => r.ok,
            () => false,
          ),
        120_000,
        200,
      ),
      failed,
    ]);
  }
  return { proc, notify };
}

export async function admin<T>(signer: SignerProc, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${signer.url}${route}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${signer.adminToken}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as T };
}

// The admin API's shapes (signer/docs/admin-api.md), as the watchdog's signer client defines them.
export type { ClientView };
export type FeedEntry = SignatureRecord;

export async function readFeed(signer: SignerProc): Promise<FeedEntry[]> {
  const out: FeedEntry[] = [];
  let after = 0;
  for (;;) {
    const r = await admin<SignaturesResponse>(signer, `/admin/v1/signatures?after=${after}&limit=10000`);
    if (r.status !== 200) throw new Error(`signature feed: HTTP ${r.status}`);
    out.push(...r.body.signatures);
    if (r.body.signatures.length === 0 || r.body.next <= after) return out;
    after = r.body.next;
  }
}

/** SIGTERM → STOPPING=1 → exit 0 (graceful: in-flight requests committed, database and HSM session closed). */
export async function stopSignerGracefully(
  signer: SignerProc,
): Promise<{ code: number | null; ms: number; stoppingSent: boolean | undefined; watchdogPings: number; unhealthy: string[] }> {
  const r = await stopProc(signer.proc, "SIGTERM", 60_000);
  const all = signer.notify?.assignments() ?? [];
  const stoppingSent = signer.notify ? all.includes("STOPPING=1") : undefined;
  signer.notify?.close();
  return {
    code: r.code,
    ms: r.ms,
    stoppingSent,
    watchdogPings: all.filter((a) => a === "WATCHDOG=1").length,
    unhealthy: all.filter((a) => a.startsWith("STATUS=unhealthy")),
  };
}

// --- checks on what was signed ----------------------------------------------------------------------------

/** BLS-verifies every released signature against its signing root and public key (blst, not the signer's pool). */
export function verifyFeed(feed: FeedEntry[]): { valid: number; invalid: FeedEntry[]; byType: Record<string, number> } {
  const keys = new Map<string, PublicKey>();
  const invalid: FeedEntry[] = [];
  const byType: Record<string, number> = {};
  for (const e of feed) {
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    let pk = keys.get(e.pubkey);
    if (!pk) {
      pk = PublicKey.fromHex(e.pubkey, true);
      keys.set(e.pubkey, pk);
    }
    let ok = false;
    try {
      ok = verify(Buffer.from(e.signingRoot.slice(2), "hex"), pk, Signature.fromHex(e.signature, true), false, true);
    } catch {
      ok = false;
    }
    if (!ok) invalid.push(e);
  }
  return { valid: feed.length - invalid.length, invalid, byType };
}

const BLOCK_TYPES = new Set(["BLOCK", "BLOCK_V2"]);

/** The slashing database (opened after the signer stopped) must hold every block and attestation released. */
export function slashingDbCoverage(dbPath: string, feed: FeedEntry[]): { blocks: number; attestations: number; missing: string[] } {
  const db = openSlashingDb(dbPath);
  try {
    const exported = db.exportInterchange();
    const blocks = new Set<string>();
    const attestations = new Set<string>();
    for (const d of exported.data) {
      for (const b of d.signed_blocks) blocks.add(`${d.pubkey.toLowerCase()}/${b.slot}/${b.signing_root?.toLowerCase()}`);
      for (const a of d.signed_attestations) attestations.add(`${d.pubkey.toLowerCase()}/${a.source_epoch}/${a.target_epoch}/${a.signing_root?.toLowerCase()}`);
    }
    const missing: string[] = [];
    let nb = 0;
    let na = 0;
    for (const e of feed) {
      if (BLOCK_TYPES.has(e.type)) {
        nb++;
        const key = `${e.pubkey.toLowerCase()}/${e.slot}/${e.signingRoot.toLowerCase()}`;
        if (!blocks.has(key)) missing.push(`block ${key}`);
      } else if (e.type === "ATTESTATION") {
        na++;
        const key = `${e.pubkey.toLowerCase()}/${e.sourceEpoch}/${e.targetEpoch}/${e.signingRoot.toLowerCase()}`;
        if (!attestations.has(key)) missing.push(`attestation ${key}`);
      }
    }
    return { blocks: nb, attestations: na, missing };
  } finally {
    db.close();
  }
}

// --- the devnet -------------------------------------------------------------------------------------------

export interface Devnet {
  proc: Proc;
  bnUrl: string;
  workDir: string;
  /** The `timeout` wrappers' pids as printed by run-devnet.sh, and the Lodestar processes under them. */
  vcPids: Record<string, { wrapper: number; node: number }>;
  finished: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<void>;
}

export async function startDevnet(lodestarDir: string, dir: string, env: Record<string, string>): Promise<Devnet> {
  const bnPort = await freePort();
  const p2pPort = await freePort();
  const workDir = path.join(dir, "devnet");
  fs.mkdirSync(workDir, { recursive: true });
  const proc = spawnLogged(
    "devnet",
    dir,
    "bash",
    [path.join(lodestarDir, "run-devnet.sh")],
    {
      N: String(VALIDATORS),
      SLOT: String(SLOT_SECONDS),
      WORK: workDir,
      BN_PORT: String(bnPort),
      P2P_PORT: String(p2pPort),
      ...env,
    },
    workDir,
  ); // lodestar dev writes genesis.ssz into its working directory: keep it out of the checkout
  const expected = env.BACKUP_VC === "1" ? ["vc1", "vc2"] : ["vc1"];
  const vcPids: Devnet["vcPids"] = {};
  await waitFor(
    "run-devnet.sh to start its validator clients",
    () => {
      if (proc.exitStatus) throw new Error(`run-devnet.sh exited early: ${JSON.stringify(proc.exitStatus)}; see ${proc.logFile} and ${workDir}/logs`);
      for (const l of proc.lines) {
        const m = /^pid (vc\d)=(\d+)$/.exec(l);
        if (m && !vcPids[m[1]!]) vcPids[m[1]!] = { wrapper: Number(m[2]), node: 0 };
      }
      return expected.every((n) => vcPids[n]);
    },
    120_000,
    200,
  );
  // `timeout` runs lodestar as its child: that node process is the validator client itself.
  for (const v of Object.values(vcPids)) {
    v.node = await waitFor("the validator client process", () => descendants(v.wrapper)[0], 10_000, 100);
  }
  return {
    proc,
    bnUrl: `http://127.0.0.1:${bnPort}`,
    workDir,
    vcPids,
    finished: proc.exited,
    async kill() {
      if (proc.exitStatus) return;
      const tree = [proc.child.pid!, ...descendants(proc.child.pid!)];
      for (const p of tree) {
        try {
          process.kill(p, "SIGCONT");
          process.kill(p, "SIGTERM");
        } catch {
          /* gone */
        }
      }
      await Promise.race([proc.exited, sleep(10_000)]);
      for (const p of tree) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    },
  };
}

// --- the chain, as the beacon node sees it ------------------------------------------------------------------

export interface ChainBlock {
  slot: number;
  proposer: number;
  graffiti: string;
  signature: string;
}

async function bnJson<T>(url: string): Promise<{ status: number; body: T | undefined }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    return { status: res.status, body: res.ok && text ? (JSON.parse(text) as T) : undefined };
  } catch {
    return { status: 0, body: undefined };
  }
}

/** Polls the beacon node: head, finality, and the canonical block (or none) of every slot once it is settled. */
export class ChainWatcher {
  readonly blocks = new Map<number, ChainBlock>();
  readonly emptySlots = new Set<number>();
  headSlot = 0;
  finalizedEpoch = 0;
  justifiedEpoch = 0;
  genesisTime: number | undefined;
  /** When each finalized epoch was first seen (ms). */
  readonly finalizedAt = new Map<number, number>();
  private nextSlot = 1;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(readonly bnUrl: string) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), 1_000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await waitFor("the last chain poll", () => !this.busy, 10_000, 50);
    await this.poll(); // a final look
  }

  currentSlot(): number {
    return this.genesisTime === undefined ? 0 : Math.floor((Date.now() / 1000 - this.genesisTime) / SLOT_SECONDS);
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      if (this.genesisTime === undefined) {
        const g = await bnJson<{ data: { genesis_time: string } }>(`${this.bnUrl}/eth/v1/beacon/genesis`);
        if (g.body) this.genesisTime = Number(g.body.data.genesis_time);
      }
      const head = await bnJson<{ data: { header: { message: { slot: string } } } }>(`${this.bnUrl}/eth/v1/beacon/headers/head`);
      if (head.body) this.headSlot = Number(head.body.data.header.message.slot);
      const fin = await bnJson<{ data: { finalized: { epoch: string }; current_justified: { epoch: string } } }>(
        `${this.bnUrl}/eth/v1/beacon/states/head/finality_checkpoints`,
      );
      if (fin.body) {
        this.finalizedEpoch = Number(fin.body.data.finalized.epoch);
        this.justifiedEpoch = Number(fin.body.data.current_justified.epoch);
        if (!this.finalizedAt.has(this.finalizedEpoch)) this.finalizedAt.set(this.finalizedEpoch, Date.now());
      }
      // A slot is settled once the wall clock is two slots past it: its block, if any, has been imported.
      const settled = this.currentSlot() - 2;
      while (this.nextSlot <= settled) {
        const slot = this.nextSlot;
        const b = await bnJson<{ data: { message: { slot: string; proposer_index: string; body: { graffiti: string } }; signature: string } }>(
          `${this.bnUrl}/eth/v2/beacon/blocks/${slot}`,
        );
        if (b.status === 0) break; // node not answering: try again next poll
        if (b.body) {
          const m = b.body.data.message;
          this.blocks.set(slot, {
            slot,
            proposer: Number(m.proposer_index),
            graffiti: graffitiText(m.body.graffiti),
            signature: b.body.data.signature.toLowerCase(),
          });
        } else {
          this.emptySlots.add(slot);
        }
        this.nextSlot++;
      }
    } finally {
      this.busy = false;
    }
  }

  /** Slashings the beacon node's operation pools hold (a slashable pair that reached the chain's view). */
  async slashingsInPool(): Promise<{ proposer: number; attester: number }> {
    const p = await bnJson<{ data: unknown[] }>(`${this.bnUrl}/eth/v1/beacon/pool/proposer_slashings`);
    const a = await bnJson<{ data: unknown[] }>(`${this.bnUrl}/eth/v1/beacon/pool/attester_slashings`);
    return { proposer: p.body?.data.length ?? -1, attester: a.body?.data.length ?? -1 };
  }

  settledSlots(): number {
    return this.nextSlot - 1;
  }
}

function graffitiText(hex: string): string {
  return Buffer.from(hex.replace(/^0x/, ""), "hex").toString("utf8").replace(/\0+$/, "");
}
