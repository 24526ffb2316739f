// The shipped HAProxy config (deploy/haproxy/vigil-signers.cfg) in front of two real signer processes on one
// real PostgreSQL slashing database: requests through HAProxy's one address are signed; a SIGKILLed signer is
// taken out of rotation within a bounded, measured time with at most a few failed requests, none of the 200s
// conflicting and every one recorded in the database; restarted, it is put back and gets requests again. A
// frozen signer (SIGSTOP) is taken out by the checks' timeout, only the requests stuck on it failing (504). A
// rolling upgrade (drain, SIGTERM, restart, ready: deploy/README.md) of both signers under load fails no request.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { startSignerCluster, type SignerCluster } from "../helpers/signer-cluster.js";
import { killLeftovers, stopWithSigterm } from "../helpers/signer-process.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, http, interopPubkey, tokenWithInteropKeys } from "../signer/harness.js";
import { freePort } from "../helpers/ports.js";
import { haproxyRuntime as runtime, haproxyServers, renderHaproxyConfig, SHIPPED_BACKEND } from "../helpers/haproxy.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const KEYS = 4;
const BACKEND = SHIPPED_BACKEND;

const probe = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
const missing = probe.status === 0 ? undefined : `haproxy is not installed (${probe.error?.message ?? probe.stderr}); install the Debian package "haproxy"`;
// In CI a missing binary is a broken setup (.ci/run installs it), not a reason to skip.
if (missing && process.env.CI === "true") throw new Error(missing);
if (missing) console.warn(`SKIPPING the HAProxy deployment test: ${missing}`);

interface LoadResult {
  at: number;
  key: number;
  source: number;
  target: number;
  status: number;
  body: string;
}

const serverStats = (socket: string) => haproxyServers(socket, SHIPPED_BACKEND);

async function waitFor<T>(
  what: string,
  limitMs: number,
  check: () => Promise<T | undefined>,
  detail: () => string = () => "",
): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return { value, ms: Date.now() - start };
    if (Date.now() - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms\n${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(missing !== undefined)("HAProxy in front of two signers (deploy/haproxy/vigil-signers.cfg)", () => {
  const work = tempDir("vigil-haproxy-");
  let token: TestToken;
  let server: TestPostgres;
  let dbUrl: string;
  let cluster: SignerCluster;
  let haproxy: ChildProcess | undefined;
  let softhsmDir: string | undefined;
  let socket: string;
  let front: string;
  let log = "";

  beforeAll(async () => {
    // This file's own SoftHSM2 token directory: another file's logins must not hide the token from our signers.
    process.env.SOFTHSM2_CONF = execFileSync("sh", ["test/setup/softhsm-conf.sh"], { cwd: ROOT, encoding: "utf8" }).trim();
    softhsmDir = path.dirname(process.env.SOFTHSM2_CONF);
    [token, server] = await Promise.all([tokenWithInteropKeys("vigil-test-haproxy", KEYS), startPostgres()]);
    dbUrl = await server.createDatabase();
    const port = await freePort();
    // The Host names validator clients use for HAProxy's address, as deploy/README.md tells operators to list.
    cluster = await startSignerCluster({
      token,
      count: 2,
      work,
      postgres: { url: dbUrl, passwordFile: server.passwordFile, poolSize: 2 },
      extra: { http: { hostAllowlist: [`127.0.0.1:${port}`, `localhost:${port}`] } },
    });

    socket = path.join(work, "haproxy.sock");
    front = `http://127.0.0.1:${port}`;
    const cfg = path.join(work, "haproxy.cfg");
    fs.writeFileSync(
      cfg,
      renderHaproxyConfig({
        port,
        socket,
        servers: cluster.members.map((m) => m.url),
      }),
    );
    const check = spawnSync("haproxy", ["-c", "-f", cfg], { encoding: "utf8" });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    haproxy = spawn("haproxy", ["-db", "-f", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    haproxy.stdout!.on("data", (d) => (log += d.toString()));
    haproxy.stderr!.on("data", (d) => (log += d.toString()));
    await waitFor(
      "both signers UP in HAProxy",
      10_000,
      async () => {
        const stats = fs.existsSync(socket) ? await serverStats(socket).catch(() => undefined) : undefined;
        return stats && [...stats.values()].every((s) => s.status === "UP") && stats.size === 2 ? true : undefined;
      },
      () => `HAProxy's log:\n${log}`,
    );
  }, 120_000);
  afterAll(async () => {
    haproxy?.kill("SIGKILL");
    await cluster?.stop();
    killLeftovers();
    await server?.stop();
    token?.destroy();
    if (softhsmDir) fs.rmSync(softhsmDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** Every key signing attestations through HAProxy, one request at a time per key, until stopped. */
  function startLoad(): { results: LoadResult[]; stop(): Promise<void> } {
    // Each key signs attestations with a rising target: never conflicting with its own earlier ones, so every
    // non-200 here is a failure of the path, not a refusal. Targets continue where an earlier load stopped.
    const results: LoadResult[] = [];
    const signOnce = async (key: number) => {
      const e = ++epochs[key]!;
      const body = attestationBody(e - 1, e);
      try {
        const res = await http(`${front}/api/v1/eth2/sign/${interopPubkey(key)}`, { body });
        results.push({ at: Date.now(), key, source: e - 1, target: e, status: res.status, body: res.text });
      } catch (err) {
        results.push({ at: Date.now(), key, source: e - 1, target: e, status: 0, body: String(err) });
      }
    };
    let running = true;
    const load = Promise.all(
      Array.from({ length: KEYS }, async (_, key) => {
        while (running) {
          await signOnce(key);
          await new Promise((r) => setTimeout(r, 10));
        }
      }),
    );
    return {
      results,
      async stop() {
        running = false;
        await load;
        released.push(...results.filter((r) => r.status === 200));
      },
    };
  }
  const epochs = Array.from({ length: KEYS }, () => 0);
  /** Every 200 of every load, for the database check at the end. */
  const released: LoadResult[] = [];

  it("routes around a SIGKILLed and a frozen signer within a bounded time, nothing conflicting or unrecorded, and takes each back", async () => {
    const { results, stop } = startLoad();
    // enough requests through both signers before the faults (a wait, not a fixed second: slow under load)
    await waitFor("requests through HAProxy", 10_000, async () => (results.length > 40 ? true : undefined));
    const before = await serverStats(socket);
    expect(
      results.every((r) => r.status === 200),
      JSON.stringify(results.filter((r) => r.status !== 200).slice(0, 3)),
    ).toBe(true);
    // leastconn spreads the load over both
    expect(before.get("signer1")!.sessions).toBeGreaterThan(0);
    expect(before.get("signer2")!.sessions).toBeGreaterThan(0);

    const killedAt = Date.now();
    await cluster.kill(0);
    const down = await waitFor("signer1 DOWN in HAProxy", 5_000, async () =>
      (await serverStats(socket)).get("signer1")!.status.startsWith("DOWN") ? true : undefined,
    );
    const afterKill = await waitFor("5 successes in a row after the kill", 5_000, async () => {
      const tail = results.filter((r) => r.at > killedAt).slice(-5);
      return tail.length === 5 && tail.every((r) => r.status === 200) ? true : undefined;
    });
    const firstOk = results.find((r) => r.at > killedAt && r.status === 200);
    const failed = results.filter((r) => r.at >= killedAt && r.status !== 200);
    console.log(
      `HAProxy failover: signer1 DOWN ${down.ms} ms after SIGKILL; first 200 after ${firstOk!.at - killedAt} ms; ` +
        `${failed.length} failed requests (${failed.map((f) => f.status).join(" ") || "none"})`,
    );
    expect(failed.length, JSON.stringify(failed)).toBeLessThanOrEqual(3);
    expect(down.ms).toBeLessThan(3_000);
    expect(afterKill.ms).toBeLessThan(5_000);

    // Restart it (the test helper gives it a new port; a real deployment keeps its port): HAProxy's runtime
    // API learns the address, the health checks put it back in rotation, and it gets requests again.
    await cluster.restart(0);
    const addr = new URL(cluster.members[0]!.url);
    expect((await runtime(socket, `set server ${BACKEND}/signer1 addr ${addr.hostname} port ${addr.port}`)).trim()).toMatch(/changed|no need to change/i);
    const up = await waitFor("signer1 UP again", 10_000, async () => ((await serverStats(socket)).get("signer1")!.status === "UP" ? true : undefined));
    const rejoined = (await serverStats(socket)).get("signer1")!.sessions;
    await waitFor("signer1 serving again", 5_000, async () => ((await serverStats(socket)).get("signer1")!.sessions > rejoined + 5 ? true : undefined));
    console.log(`HAProxy rejoin: signer1 UP ${up.ms} ms after its restart was ready`);
    const afterRejoin = results.filter((r) => r.at > killedAt + afterKill.ms);
    expect(
      afterRejoin.every((r) => r.status === 200),
      JSON.stringify(afterRejoin.filter((r) => r.status !== 200).slice(0, 3)),
    ).toBe(true);

    // A frozen signer (SIGSTOP: the kernel still accepts its connections, nothing answers) is the harder case:
    // no refused connection tells HAProxy, only the checks' 1 s timeout does. Requests already sent to it
    // are not re-sent (they may be signed when it wakes up): they fail with 504 after `timeout server`.
    const frozen = cluster.members[1]!.process.child;
    const frozenAt = Date.now();
    frozen.kill("SIGSTOP");
    let thawed = false;
    try {
      const frozenDown = await waitFor("frozen signer2 DOWN in HAProxy", 6_000, async () =>
        (await serverStats(socket)).get("signer2")!.status.startsWith("DOWN") ? true : undefined,
      );
      await waitFor("5 successes in a row while signer2 is frozen", 8_000, async () => {
        const tail = results.filter((r) => r.at > frozenAt + frozenDown.ms).slice(-5);
        return tail.length === 5 && tail.every((r) => r.status === 200) ? true : undefined;
      });
      // the requests stuck on it have timed out by now (timeout server 5 s)
      await new Promise((r) => setTimeout(r, Math.max(0, frozenAt + 5_500 - Date.now())));
      const failedFrozen = results.filter((r) => r.at >= frozenAt && r.status !== 200);
      console.log(
        `HAProxy frozen signer: signer2 DOWN ${frozenDown.ms} ms after SIGSTOP; ` +
          `${failedFrozen.length} failed requests (${failedFrozen.map((f) => f.status).join(" ") || "none"})`,
      );
      // at most the requests in flight on it when it froze, plus those leastconn sent it before the checks
      // took it out: each key sends one request at a time, so one per key
      expect(failedFrozen.length, JSON.stringify(failedFrozen)).toBeLessThanOrEqual(KEYS);
      expect(failedFrozen.every((r) => r.status === 504)).toBe(true);
      expect(frozenDown.ms).toBeLessThan(5_000);
      frozen.kill("SIGCONT");
      thawed = true;
      await waitFor("thawed signer2 UP again", 10_000, async () => ((await serverStats(socket)).get("signer2")!.status === "UP" ? true : undefined));
    } finally {
      if (!thawed) frozen.kill("SIGCONT");
    }
    await stop();
    expect(log).toMatch(/signer1 is DOWN/);
    expect(log).toMatch(/signer1 is UP/);
  }, 60_000);

  it("rolls an upgrade through both signers, one at a time, without a failed request (deploy/README.md's procedure)", async () => {
    const { results, stop } = startLoad();
    await waitFor("load under way", 5_000, async () => (results.length > 20 ? true : undefined));
    for (const [i, member] of cluster.members.entries()) {
      const name = `signer${i + 1}`;
      // 1. drain: no new request goes to it; requests in flight on it finish
      expect((await runtime(socket, `set server ${BACKEND}/${name} state drain`)).trim()).toBe("");
      await waitFor(`${name} drained (no session in flight)`, 10_000, async () => ((await serverStats(socket)).get(name)!.current === 0 ? true : undefined));
      // 2. stop it the systemd way (SIGTERM: finishes in flight, commits, exits 0), then "upgrade" and start it
      //    on its own port again, as `systemctl restart vigil-signer@N` does
      const stopped = await stopWithSigterm(member.process);
      expect(stopped.code).toBe(0);
      const config = JSON.parse(fs.readFileSync(member.configFile, "utf8"));
      config.listen.port = Number(new URL(member.url).port);
      fs.writeFileSync(member.configFile, JSON.stringify(config), { mode: 0o600 });
      await cluster.restart(i);
      expect(member.url).toBe(`http://127.0.0.1:${config.listen.port}`);
      // 3. back in rotation once its own health check passes
      expect((await runtime(socket, `set server ${BACKEND}/${name} state ready`)).trim()).toBe("");
      await waitFor(`${name} UP after the upgrade`, 10_000, async () => ((await serverStats(socket)).get(name)!.status === "UP" ? true : undefined));
      const served = (await serverStats(socket)).get(name)!.sessions;
      await waitFor(`${name} serving again`, 5_000, async () => ((await serverStats(socket)).get(name)!.sessions > served + 5 ? true : undefined));
    }
    await stop();
    const failed = results.filter((r) => r.status !== 200);
    console.log(`HAProxy rolling upgrade: ${results.length} requests during the roll of both signers, ${failed.length} failed`);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    expect(results.length).toBeGreaterThan(100);
  }, 60_000);

  it("every 200 released through HAProxy is recorded in the shared database", async () => {
    // None was refused (412) or conflicting: each key's attestations were released at distinct rising targets,
    // and the database holds every one of them.
    expect(released.length).toBeGreaterThan(100);
    const client: pg.Client = await server.connect(dbUrl);
    try {
      const rows = await client.query<{ pubkey: string; target: string; source: string }>(
        "SELECT encode(v.pubkey, 'hex') AS pubkey, a.source_epoch::text AS source, a.target_epoch::text AS target FROM signed_attestations a JOIN validators v ON v.id = a.validator_id",
      );
      const recorded = new Set(rows.rows.map((r) => `0x${r.pubkey}/${r.source}-${r.target}`));
      const unrecorded = released.map((r) => `${interopPubkey(r.key)}/${r.source}-${r.target}`).filter((k) => !recorded.has(k));
      expect(unrecorded).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
