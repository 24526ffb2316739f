// `vigil signer start --workers N` (issue 12): N complete signers as node:cluster workers behind one port, on a
// real PostgreSQL slashing database and a real SoftHSM2 token. Both workers serve through the one port (each
// fresh connection goes to the next worker), one scrape of /metrics shows every worker, a SIGKILLed worker is
// restarted while the port keeps answering, a key imported or deleted through one worker's keymanager API is
// signable (or not) at every worker before the call returns, SIGTERM stops them all with exit 0, and a SQLite
// slashing database with more than one worker is refused with exit 3.
import { execFile, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { create } from "@chainsafe/bls-keystore";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadUnixDgram } from "../../common/systemd-notify.js";
import { openKeyStore } from "../../signer/keystore/index.js";
import { fakeNotifySocket } from "../helpers/notify-socket.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { CLI, killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig, type SignerProcess } from "../helpers/signer-process.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { attestationBody, interopPubkey, tokenWithInteropKeys, writePrivate } from "./harness.js";

const KEYS = 2;
const KM_TOKEN = "keymanager-token-workers-0123456789";
const work = tempDir("vigil-workers-");
let token: TestToken;
let server: TestPostgres;
let ownSofthsmDir: string | undefined;

beforeAll(async () => {
  // A token directory of this file's own: workers log in one after another, and another file's logins must not
  // rewrite the token files under them (test/signer/multi-instance.test.ts says why).
  process.env.SOFTHSM2_CONF = execFileSync("sh", ["test/setup/softhsm-conf.sh"], { encoding: "utf8" }).trim();
  ownSofthsmDir = path.dirname(process.env.SOFTHSM2_CONF);
  [token, server] = await Promise.all([tokenWithInteropKeys("vigil-test-workers", KEYS), startPostgres()]);
}, 120_000);
afterAll(async () => {
  killLeftovers();
  await server?.stop();
  token?.destroy();
  if (ownSofthsmDir) fs.rmSync(ownSofthsmDir, { recursive: true, force: true });
});

/** One request on a connection of its own (no keep-alive pool): node:cluster hands each new connection to the next worker. */
function fresh(url: string, opts: { method?: string; body?: unknown; auth?: string } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      url,
      {
        method: opts.method ?? (body === undefined ? "GET" : "POST"),
        agent: false,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }),
          ...(opts.auth ? { authorization: opts.auth } : {}),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode!, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The value of one series on a Prometheus text page, e.g. `vigil_signer_workers{state="ready"}`; undefined if absent. */
function series(page: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of page.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = /^[^{]+\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const got = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2]);
  }
  return undefined;
}

/** Worker pids: the primary's child processes (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function keystoreJson(i: number, password: string): Promise<string> {
  const kdf = { function: "pbkdf2" as const, params: { dklen: 32, c: 2, prf: "hmac-sha256" as const, salt: crypto.randomBytes(32).toString("hex") } };
  return JSON.stringify(await create(password, interopSecretKey(i), Buffer.from(interopPubkey(i).slice(2), "hex"), `m/12381/3600/${i}/0/0`, "", kdf));
}

async function startWorkers(
  name: string,
  extra: Record<string, unknown> = {},
  env: Record<string, string> = {},
): Promise<{ signer: SignerProcess; url: string; dataDir: string }> {
  const url = await server.createDatabase();
  const dir = path.join(work, name);
  const dataDir = path.join(dir, "data");
  const file = writeSignerConfig(token, dataDir, path.join(dir, "signer.json"), {
    slashingDb: { postgres: { url, passwordFile: server.passwordFile, poolSize: 2 } },
    logLevel: "warn",
    workers: 2,
    ...extra,
  });
  // spawnSigner passes this process's environment on.
  Object.assign(process.env, env);
  const signer = spawnSigner(file, "ignore");
  for (const k of Object.keys(env)) delete process.env[k];
  return { signer, url: await signer.ready, dataDir };
}

it("two workers serve through one port, one scrape shows both, a SIGKILLed worker comes back while the port answers, SIGTERM stops all with 0", async () => {
  const { signer, url, dataDir } = await startWorkers("serve");
  expect(signer.stderr()).toMatch(/ready: 2 key\(s\) on \S+ \(2 workers\)/);
  // Each worker has its own data directory (lock, audit feed) under the group's.
  expect(fs.existsSync(path.join(dataDir, "workers", "0", "signer.lock"))).toBe(true);
  expect(fs.existsSync(path.join(dataDir, "workers", "1", "signer.lock"))).toBe(true);

  for (let target = 1; target <= 6; target++) {
    const r = await fresh(`${url}/api/v1/eth2/sign/${interopPubkey(target % KEYS)}`, { body: attestationBody(target - 1, target) });
    expect(r.status).toBe(200);
  }
  const page = (await fresh(`${url}/metrics`)).text;
  const signedBy = (w: string) => series(page, "vigil_signer_requests_total", { type: "ATTESTATION", outcome: "signed", worker: w }) ?? 0;
  expect(signedBy("0")).toBeGreaterThan(0);
  expect(signedBy("1")).toBeGreaterThan(0);
  expect(signedBy("0") + signedBy("1")).toBe(6);
  expect(series(page, "vigil_signer_keys_loaded", { worker: "0" })).toBe(KEYS);
  expect(series(page, "vigil_signer_keys_loaded", { worker: "1" })).toBe(KEYS);
  expect(series(page, "vigil_signer_workers", { state: "ready" })).toBe(2);
  // Issue 14's per-process gauges come from every worker, each under its own label (none summed across workers).
  for (const worker of ["0", "1"]) {
    expect(series(page, "vigil_build_info", { worker })).toBe(1);
    expect(series(page, "vigil_signer_ready", { worker })).toBe(1);
    expect(series(page, "vigil_slashing_db_size_bytes", { worker })).toBeGreaterThan(0);
    // Both served some of the signatures of the implicit client "default": each reports its own last one.
    expect(series(page, "vigil_signer_client_last_signature_timestamp_seconds", { client: "default", worker })).toBeGreaterThan(Date.now() / 1000 - 60);
  }

  // SIGKILL one worker: the port keeps answering meanwhile, and the primary starts it again.
  const workers = childrenOf(signer.child.pid!);
  expect(workers).toHaveLength(2);
  process.kill(workers[0]!, "SIGKILL");
  let served = 0;
  let target = 100;
  const back = await until("the worker restarted", async () => {
    const r = await fresh(`${url}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: attestationBody(target - 1, target++) });
    expect(r.status).toBe(200);
    served++;
    const m = (await fresh(`${url}/metrics`)).text;
    return series(m, "vigil_signer_workers", { state: "ready" }) === 2 && series(m, "vigil_signer_worker_restarts_total", {}) === 1 ? m : undefined;
  });
  expect(served).toBeGreaterThan(0);
  expect(back).toContain("vigil_signer_worker_restarts_total");
  const after = childrenOf(signer.child.pid!);
  expect(after).toHaveLength(2);
  expect(after).toContain(workers[1]);
  expect(signer.stderr()).toMatch(/signer worker \d \(pid \d+\) died \(SIGKILL\): restarting it/);

  const stopped = await stopWithSigterm(signer);
  expect(stopped).toMatchObject({ code: 0, signal: null });
  expect(after.filter(alive)).toEqual([]);
}, 120_000);

it("the admin API's client views are the whole group's, whichever worker answers (the watchdog judges silence from them)", async () => {
  const ADMIN_TOKEN = "admin-token-workers-0123456789abcdef";
  const tokenFile = writePrivate(path.join(work, "admin.token"), ADMIN_TOKEN);
  const { signer, url } = await startWorkers("views", { admin: { tokenFile } });
  for (let target = 1; target <= 6; target++) {
    const r = await fresh(`${url}/api/v1/eth2/sign/${interopPubkey(target % KEYS)}`, { body: attestationBody(target - 1, target) });
    expect(r.status).toBe(200);
  }
  // Fresh connections alternate between the workers; each served some of the six, and each answers for all six.
  const page = (await fresh(`${url}/metrics`)).text;
  for (const w of ["0", "1"]) expect(series(page, "vigil_signer_requests_total", { type: "ATTESTATION", outcome: "signed", worker: w })).toBeGreaterThan(0);
  for (let i = 0; i < 4; i++) {
    const r = await fresh(`${url}/admin/v1/clients`, { auth: `Bearer ${ADMIN_TOKEN}` });
    expect(r.status).toBe(200);
    const views = JSON.parse(r.text).clients as { id: string; signed: number; lastSigned: { pubkey: string }[]; lastRequestAt: string | null }[];
    const active = views.filter((v) => v.signed > 0);
    expect(active).toHaveLength(1);
    expect(active[0]!.signed).toBe(6);
    expect(active[0]!.lastSigned.map((e) => e.pubkey).sort()).toEqual([interopPubkey(0), interopPubkey(1)].sort());
    const one = await fresh(`${url}/admin/v1/clients/${active[0]!.id}`, { auth: `Bearer ${ADMIN_TOKEN}` });
    expect(JSON.parse(one.text)).toMatchObject({ id: active[0]!.id, signed: 6 });
  }
  expect(await stopWithSigterm(signer)).toMatchObject({ code: 0 });
}, 120_000);

it("a key imported or deleted through one worker's keymanager API is signable, or not, at every worker when the call returns", async () => {
  const tokenFile = writePrivate(path.join(work, "km.token"), KM_TOKEN);
  const { signer, url } = await startWorkers("keys", { keymanager: { enabled: true, tokenFile } });
  const auth = `Bearer ${KM_TOKEN}`;
  const NEW = 7; // not on the token
  const password = "workers-keystore-pw";
  const imported = await fresh(`${url}/eth/v1/keystores`, { body: { keystores: [await keystoreJson(NEW, password)], passwords: [password] }, auth });
  expect(imported.status).toBe(200);
  expect(JSON.parse(imported.text).data).toEqual([{ status: "imported" }]);
  // Fresh connections alternate between the workers: both must sign with the new key right away.
  for (let target = 1; target <= 4; target++) {
    const r = await fresh(`${url}/api/v1/eth2/sign/${interopPubkey(NEW)}`, { body: attestationBody(target - 1, target) });
    expect(r.status).toBe(200);
  }
  const page = (await fresh(`${url}/metrics`)).text;
  expect(series(page, "vigil_signer_keys_loaded", { worker: "0" })).toBe(KEYS + 1);
  expect(series(page, "vigil_signer_keys_loaded", { worker: "1" })).toBe(KEYS + 1);

  const deleted = await fresh(`${url}/eth/v1/keystores`, { method: "DELETE", body: { pubkeys: [interopPubkey(NEW)] }, auth });
  expect(deleted.status).toBe(200);
  const reply = JSON.parse(deleted.text);
  expect(reply.data).toEqual([{ status: "deleted" }]);
  // Everything both workers signed for it is in the exported history.
  expect(JSON.parse(reply.slashing_protection).data[0].signed_attestations).toHaveLength(4);
  for (let target = 10; target <= 13; target++) {
    const r = await fresh(`${url}/api/v1/eth2/sign/${interopPubkey(NEW)}`, { body: attestationBody(target - 1, target) });
    expect(r.status).toBe(404);
  }
  expect(await stopWithSigterm(signer)).toMatchObject({ code: 0 });
}, 120_000);

it("POST /reload at one worker and SIGHUP to the primary reload every worker; the primary keeps running", async () => {
  const { signer, url } = await startWorkers("reload");
  const ADDED = 8; // put on the token behind the group's back, as `vigil keys import` in another process would
  const onToken = async (change: (store: ReturnType<typeof openKeyStore>) => Promise<unknown>) => {
    const store = openKeyStore(token.config);
    try {
      await change(store);
    } finally {
      await store.close();
    }
  };
  const keysAt = async (worker: string) => series((await fresh(`${url}/metrics`)).text, "vigil_signer_keys_loaded", { worker });
  await onToken((store) => store.importKeys([{ secretKey: interopSecretKey(ADDED), pubkey: interopPubkey(ADDED) }]));

  const started = await fresh(`${url}/reload`, { method: "POST" });
  expect(started.status).toBe(202);
  await until("both workers to load the new key", async () => ((await keysAt("0")) === KEYS + 1 && (await keysAt("1")) === KEYS + 1 ? true : undefined));
  // Fresh connections alternate between the workers: each signs with it, and each one's GET /reload says completed.
  for (let target = 1; target <= 4; target++) {
    expect((await fresh(`${url}/api/v1/eth2/sign/${interopPubkey(ADDED)}`, { body: attestationBody(target - 1, target) })).status).toBe(200);
    expect(JSON.parse((await fresh(`${url}/reload`)).text).status).toBe("completed");
  }

  await onToken((store) => store.delete([interopPubkey(ADDED)]));
  signer.child.kill("SIGHUP");
  await until("both workers to drop the removed key", async () => ((await keysAt("0")) === KEYS && (await keysAt("1")) === KEYS ? true : undefined));
  for (let target = 10; target <= 13; target++) {
    expect((await fresh(`${url}/api/v1/eth2/sign/${interopPubkey(ADDED)}`, { body: attestationBody(target - 1, target) })).status).toBe(404);
  }
  expect(signer.child.exitCode).toBeNull();
  expect(await stopWithSigterm(signer)).toMatchObject({ code: 0 });
}, 120_000);

it("more than one worker on a SQLite slashing database is refused with exit 3 and one line saying why", async () => {
  const run = promisify(execFile);
  const file = writeSignerConfig(token, path.join(work, "sqlite", "data"), path.join(work, "sqlite", "signer.json"), { logLevel: "warn" });
  for (const args of [["--workers", "2"], []]) {
    if (args.length === 0) fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, "utf8")), workers: 2 }), { mode: 0o600 });
    const failed = await run(process.execPath, [CLI, "signer", "start", "--config", file, ...args]).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(3);
    const lines = failed!.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/workers .*needs the PostgreSQL slashing database.*SQLite file has one writer/);
  }
  // Nothing was started: no data directory was created.
  expect(fs.existsSync(path.join(work, "sqlite", "data"))).toBe(false);
});

const noDgram = "error" in loadUnixDgram();

it.skipIf(noDgram)(
  "systemd hears from the primary only: READY=1 once every worker is ready, WATCHDOG=1 while they answer",
  async () => {
    const sock = await fakeNotifySocket();
    try {
      const { signer } = await startWorkers("notify", {}, { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: "1000000" });
      await sock.waitFor((a) => a === "READY=1", 10_000, "READY=1");
      const seen = sock.assignments();
      const ready = seen.indexOf("READY=1");
      expect(seen.indexOf("STATUS=starting signer worker 2 of 2")).toBeGreaterThan(-1);
      expect(seen.indexOf("STATUS=starting signer worker 2 of 2")).toBeLessThan(ready);
      expect(seen.filter((a) => a === "READY=1")).toHaveLength(1); // the workers never notify (NOTIFY_SOCKET is not theirs)
      expect(seen).toContain(`STATUS=ready: 2 key(s) on ${await signer.ready} (2 workers)`);
      const pings = () => sock.assignments().filter((a) => a === "WATCHDOG=1").length;
      const before = pings();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(pings()).toBeGreaterThan(before);
      expect(await stopWithSigterm(signer)).toMatchObject({ code: 0 });
      expect(sock.assignments()).toContain("STOPPING=1");
    } finally {
      sock.close();
    }
  },
  60_000,
);

it("a worker that cannot start stops the group with the worker's exit code (41: the database refused the password)", async () => {
  const wrong = writePrivate(path.join(work, "wrong.password"), "not-the-password");
  const url = await server.createDatabase();
  const file = writeSignerConfig(token, path.join(work, "badpw", "data"), path.join(work, "badpw", "signer.json"), {
    slashingDb: { postgres: { url, passwordFile: wrong } },
    logLevel: "warn",
    workers: 2,
  });
  const signer = spawnSigner(file, "ignore");
  await expect(signer.ready).rejects.toThrow(/exited \(41\)/);
  expect(signer.stderr()).toMatch(/signer worker 0 exited before it was ready \(exit code 41\)/);
  expect(childrenOf(signer.child.pid!)).toEqual([]);
}, 60_000);

it("a worker that keeps failing to start again stops the group with its exit code, after backoff", async () => {
  const { signer, dataDir } = await startWorkers("giveup");
  // A worker reads the config file when it starts: a broken file makes every restart fail (exit 3).
  const file = path.join(path.dirname(dataDir), "signer.json");
  fs.writeFileSync(file, "{ not json", { mode: 0o600 });
  const workers = childrenOf(signer.child.pid!);
  expect(workers).toHaveLength(2);
  const started = Date.now();
  process.kill(workers[0]!, "SIGKILL");
  const exited = await signer.exited;
  expect(exited).toEqual({ code: 3, signal: null });
  // Immediately, then after 1, 2, 4 and 8 s: five failed starts.
  expect(Date.now() - started).toBeGreaterThan(14_000);
  expect(signer.stderr().match(/exited before it was ready \(exit code 3\)/g)).toHaveLength(5);
  expect(signer.stderr()).toMatch(/failed to start 5 times in a row: giving up, stopping every worker/);
  expect(workers.filter(alive)).toEqual([]); // the healthy one was stopped too
}, 60_000);
