// The database's high availability, with the shipped configs (deploy/patroni/patroni.yml,
// deploy/haproxy/vigil-postgres.cfg): a real signer process and an in-process PostgresSlashingProtection sign
// continuously through HAProxy on a Patroni pair (synchronous_mode) while the primary's postmaster is
// SIGKILLed. Patroni promotes the synchronous standby; the checks in flight fail closed (503 / DB_WRITE_FAILED,
// never a signature, never a refusal); the next ones reach the new primary without restarting anything; every
// signature released is in the new primary's history; none conflicts; the old primary rejoins as a replica.
// A connection that lands on a read-only standby fails closed as "database unavailable" (READ_ONLY), never as a
// refusal.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SlashingDbUnavailableError } from "../../slashing-db/index.js";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";
import { PostgresSlashingProtection } from "../../slashing-db/postgres/protection.js";
import { haproxyStatus, patroniMissing, startPatroniPair, type PatroniCluster } from "../helpers/patroni.js";
import { startSignerCluster, type SignerCluster } from "../helpers/signer-cluster.js";
import { killLeftovers } from "../helpers/signer-process.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { GVR, attestationBody, http, interopPubkey, tokenWithInteropKeys } from "../signer/harness.js";
import { haproxyRuntime as runtime, haproxyServers } from "../helpers/haproxy.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Keys the signer process signs for; the in-process protection uses other validators (keys below). */
const KEYS = 4;
const SLOT_MS = 12_000;
const BACKEND = "vigil_postgres_primary";

const missing = patroniMissing();
// In CI a missing binary is a broken setup (.ci/run installs them), not a reason to skip.
if (missing && process.env.CI === "true") throw new Error(missing);
if (missing) console.warn(`SKIPPING the Patroni test: ${missing}`);

/** A validator key the in-process protection checks for (not one of the signer's). */
const protectionKey = (i: number) => Buffer.alloc(48, 0x70 + i);

interface Released {
  at: number;
  pubkey: string;
  source: number;
  target: number;
  status: number;
  body: string;
}

/** Any slashable pair among one validator's released attestations (double vote or surround), as text. */
function slashablePairs(released: Released[]): string[] {
  const out: string[] = [];
  const byKey = new Map<string, Released[]>();
  for (const r of released) byKey.set(r.pubkey, [...(byKey.get(r.pubkey) ?? []), r]);
  for (const [key, list] of byKey) {
    for (const [i, a] of list.entries()) {
      for (const b of list.slice(i + 1)) {
        const double = a.target === b.target && a.body !== b.body;
        const surround = (a.source < b.source && b.target < a.target) || (b.source < a.source && a.target < b.target);
        if (double || surround) out.push(`${key}: ${a.source}-${a.target} vs ${b.source}-${b.target}`);
      }
    }
  }
  return out;
}

describe.skipIf(missing !== undefined)("PostgreSQL on a Patroni pair behind HAProxy (deploy/patroni, deploy/haproxy/vigil-postgres.cfg)", () => {
  const work = tempDir("vigil-patroni-test-");
  let token: TestToken;
  let db: PatroniCluster;
  let password: string;
  let signers: SignerCluster | undefined;
  let softhsmDir: string | undefined;

  beforeAll(async () => {
    // This file's own SoftHSM2 token directory: another file's logins must not hide the token from our signer.
    process.env.SOFTHSM2_CONF = execFileSync("sh", ["test/setup/softhsm-conf.sh"], { cwd: ROOT, encoding: "utf8" }).trim();
    softhsmDir = path.dirname(process.env.SOFTHSM2_CONF);
    [token, db] = await Promise.all([tokenWithInteropKeys("vigil-test-patroni", KEYS), startPatroniPair()]);
    password = fs.readFileSync(db.passwordFile, "utf8");
  }, 120_000);
  afterAll(async () => {
    await signers?.stop();
    killLeftovers();
    await db?.stop();
    token?.destroy();
    if (softhsmDir) fs.rmSync(softhsmDir, { recursive: true, force: true });
  }, 60_000);

  it("the shipped files hold no password of the test and are what the helper runs", () => {
    // The helper replaced only the CHANGE-ME placeholders: the shipped template still has them.
    const template = fs.readFileSync(path.join(ROOT, "deploy/patroni/patroni.yml"), "utf8");
    expect(template.match(/CHANGE-ME-\w+-password/g)).toHaveLength(3);
    expect(template).toMatch(/^ {4}synchronous_mode: true$/m);
    expect(template).toMatch(/^ {4}primary_start_timeout: 0$/m);
    expect(template).toMatch(/^ {6}use_pg_rewind: true$/m);
    const logs = fs.readdirSync(db.logDir).map((f) => fs.readFileSync(path.join(db.logDir, f), "utf8"));
    expect(logs.some((l) => l.includes(password))).toBe(false);
    expect(fs.statSync(db.passwordFile).mode & 0o077).toBe(0);
  });

  it("a connection that lands on the read-only standby fails closed as READ_ONLY, never as a refusal, and is discarded", async () => {
    const members = await db.members();
    const primary = members.find((m) => m.role === "leader")!.name;
    const standby = members.find((m) => m.role === "sync_standby")!.name;
    // One pooled connection: if a client that met the standby were kept, every later check would meet it again.
    const protection = await PostgresSlashingProtection.open({ url: db.url, password, poolSize: 1 }, { genesisValidatorsRoot: GVR });
    const check = (target: number) =>
      protection.checkAndRecord({
        kind: "attestation",
        pubkey: protectionKey(9),
        sourceEpoch: 1n,
        targetEpoch: BigInt(target),
        signingRoot: Buffer.alloc(32, target),
      });
    try {
      expect(await check(2)).toBe("recorded");
      // synchronous_commit=on waits for the standby's flush, not its replay: let it replay the schema first, so
      // that what it answers is "read-only", not "no such table" (both fail closed; this test is about the former).
      await caughtUp(db.memberUrl(primary), db.memberUrl(standby), password);
      // What HAProxy does when its view lags a switchover: the real HAProxy is told to send new connections to
      // the standby (its check disabled, forced up) and to drop those to the primary.
      await runtime(db.haproxySocket, `disable health ${BACKEND}/${standby}`);
      await runtime(db.haproxySocket, `set server ${BACKEND}/${standby} health up`);
      await runtime(db.haproxySocket, `set server ${BACKEND}/${primary} state maint`);
      await runtime(db.haproxySocket, `shutdown sessions server ${BACKEND}/${primary}`);
      // The runtime API schedules the cut; wait until the primary has no session left through HAProxy.
      await waitFor("no session left to the primary", 5_000, async () => (await haproxyServers(db.haproxySocket, BACKEND)).get(primary)!.current === 0);
      try {
        for (const target of [3, 4, 5]) {
          const err = await check(target).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(SlashingDbUnavailableError);
          expect((err as SlashingDbUnavailableError).code).toBe("DB_WRITE_FAILED");
          // the first check may meet the connection HAProxy just cut (UNREACHABLE); the next ones the standby
          if (target > 3) expect((err as SlashingDbUnavailableError).failure, (err as Error).message).toBe("READ_ONLY");
        }
        const health = await protection.health();
        expect(health.up).toBe(false);
        expect(health.cause, health.message).toBe("READ_ONLY");
      } finally {
        await runtime(db.haproxySocket, `set server ${BACKEND}/${primary} state ready`);
        await runtime(db.haproxySocket, `set server ${BACKEND}/${standby} state maint`);
        await runtime(db.haproxySocket, `enable health ${BACKEND}/${standby}`);
        await runtime(db.haproxySocket, `set server ${BACKEND}/${standby} state ready`);
        await waitFor("HAProxy back to the primary only", 10_000, async () => {
          const status = await haproxyStatus(db.haproxySocket);
          return status.get(primary) === "UP" && status.get(standby)!.startsWith("DOWN");
        });
      }
      // The standby's connection was discarded: the same protection (one connection) reaches the primary again.
      await waitFor("the protection recording on the primary again", 5_000, async () => (await check(6).catch(() => undefined)) === "recorded");
    } finally {
      await protection.close();
    }
  });

  it("survives a SIGKILLed primary postmaster: promotion, fail-closed switch, no restart, history complete, old primary rejoins", async () => {
    signers = await startSignerCluster({ token, count: 1, work, postgres: { url: db.url, passwordFile: db.passwordFile, poolSize: 4 } });
    const signerUrl = signers.members[0]!.url;
    const protection = await PostgresSlashingProtection.open({ url: db.url, password }, { genesisValidatorsRoot: GVR });

    // Each validator attests with rising epochs (never conflicting with its own earlier votes), one request at
    // a time: every non-200 is the path failing (503), never a refusal.
    const results: Released[] = [];
    const protectionResults: { at: number; key: number; target: number; outcome: string; error?: unknown }[] = [];
    let running = true;
    const signerLoad = Array.from({ length: KEYS }, async (_, key) => {
      for (let e = 1; running; e++) {
        const pubkey = interopPubkey(key);
        let status = 0;
        let body = "";
        try {
          const res = await http(`${signerUrl}/api/v1/eth2/sign/${pubkey}`, { body: attestationBody(e - 1, e) });
          [status, body] = [res.status, res.text];
        } catch (err) {
          body = String(err);
        }
        results.push({ at: Date.now(), pubkey, source: e - 1, target: e, status, body });
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    const protectionLoad = Array.from({ length: 2 }, async (_, key) => {
      for (let e = 1; running; e++) {
        try {
          const outcome = await protection.checkAndRecord({
            kind: "attestation",
            pubkey: protectionKey(key),
            sourceEpoch: BigInt(e - 1),
            targetEpoch: BigInt(e),
            signingRoot: Buffer.alloc(32, e % 256),
          });
          protectionResults.push({ at: Date.now(), key, target: e, outcome });
        } catch (error) {
          protectionResults.push({ at: Date.now(), key, target: e, outcome: "error", error });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    const load = Promise.all([...signerLoad, ...protectionLoad]);

    try {
      // Steady signing first (under load the signer may take a few seconds to get going).
      await waitFor("10 signatures before the kill", 20_000, () => results.filter((r) => r.status === 200).length >= 10);
      expect(results.filter((r) => r.status !== 200).map((r) => r.body)).toEqual([]);

      const { member: old, killedAtMs } = await db.killPrimaryPostmaster();
      const promoted = await db.waitForNewPrimary(old, 30_000);
      // Signing resumes through the same signer process (not restarted) and the same protection object.
      const resumed = await waitFor("5 signatures in a row after the promotion", 20_000, () => {
        const tail = results.filter((r) => r.at > promoted.promotedAtMs).slice(-5);
        return tail.length === 5 && tail.every((r) => r.status === 200);
      });
      await waitFor("the in-process protection recording again", 10_000, () =>
        protectionResults.some((r) => r.at > promoted.writableAtMs && r.outcome === "recorded"),
      );
      // The signer's own verdict (what an HAProxy in front of several signers checks) is UP again too.
      await waitFor("the signer's /healthcheck 200 again", 15_000, async () => (await http(`${signerUrl}/healthcheck`).catch(() => undefined))?.status === 200);
      const healthyAt = Date.now();
      const firstSignature = results.find((r) => r.at > killedAtMs && r.status === 200 && r.at >= promoted.promotedAtMs)!;
      const failed = results.filter((r) => r.at > killedAtMs && r.status !== 200);
      console.log(
        `Patroni failover: ${old} killed → ${promoted.member} promoted in ${promoted.promotedAtMs - killedAtMs} ms; ` +
          `writable through HAProxy ${promoted.writableAtMs - promoted.promotedAtMs} ms after the promotion; ` +
          `first signature ${firstSignature.at - promoted.promotedAtMs} ms after the promotion ` +
          `(${firstSignature.at - killedAtMs} ms after the kill); signer /healthcheck UP ${healthyAt - promoted.promotedAtMs} ms after the promotion; ${failed.length} requests failed closed (${[...new Set(failed.map((f) => f.status))].join(" ") || "none"})`,
      );
      expect(promoted.member).not.toBe(old);
      expect(fs.readFileSync(path.join(db.logDir, `${old}.log`), "utf8")).toMatch(/Primary crashed\. Failing over\./);
      // primary_start_timeout 0 fails over at once (Patroni's loop_wait is 2 s); far inside the 2-slot target.
      expect(promoted.promotedAtMs - killedAtMs).toBeLessThan(10_000);
      expect(firstSignature.at - promoted.promotedAtMs).toBeLessThan(2 * SLOT_MS);
      expect(firstSignature.at - promoted.promotedAtMs).toBeLessThan(6_000);
      expect(resumed).toBeLessThan(20_000);
      // Fail closed: what failed during the switch is 503 (the database unavailable), nothing else.
      expect(
        failed.every((f) => f.status === 503 && /db_unavailable|DB_WRITE_FAILED|unavailable/i.test(f.body)),
        JSON.stringify(failed.slice(0, 3)),
      ).toBe(true);
      const protectionErrors = protectionResults.filter((r) => r.outcome === "error");
      expect(
        protectionErrors.every((r) => r.error instanceof SlashingDbUnavailableError),
        String(protectionErrors.find((r) => !(r.error instanceof SlashingDbUnavailableError))?.error),
      ).toBe(true);

      // The old primary rejoins as a replica (Patroni restarts it, pg_rewind if its WAL diverged) and becomes
      // the synchronous standby again.
      await waitFor("the old primary back as the synchronous standby", 45_000, async () => {
        const m = (await db.members()).find((x) => x.name === old);
        return m?.role === "sync_standby" && m.state === "running";
      });
      console.log(`Patroni rejoin: ${old} back as sync_standby ${Date.now() - killedAtMs} ms after the kill`);
    } finally {
      running = false;
      await load;
      await protection.close();
    }

    // Every signature released (200) — before the kill and after — is in the new primary's history, read
    // directly from it, not through HAProxy; and no released pair is slashable.
    const leader = (await db.leader())!;
    const client = new pg.Client(toPoolConfig({ url: db.memberUrl(leader), password }));
    await client.connect();
    try {
      const rows = await client.query<{ pubkey: string; source: string; target: string; root: string | null }>(
        "SELECT encode(v.pubkey, 'hex') AS pubkey, a.source_epoch::text AS source, a.target_epoch::text AS target, encode(a.signing_root, 'hex') AS root FROM signed_attestations a JOIN validators v ON v.id = a.validator_id",
      );
      const recorded = new Set(rows.rows.map((r) => `0x${r.pubkey}/${r.source}-${r.target}`));
      const released = results.filter((r) => r.status === 200);
      expect(released.length).toBeGreaterThan(20);
      expect(released.filter((r) => !recorded.has(`${r.pubkey}/${r.source}-${r.target}`)).map((r) => `${r.pubkey}/${r.source}-${r.target}`)).toEqual([]);
      expect(rows.rows.every((r) => r.root !== null)).toBe(true);
      expect(slashablePairs(released)).toEqual([]);
      const recordedByProtection = protectionResults.filter((r) => r.outcome === "recorded");
      const protectionRecorded = new Set(rows.rows.map((r) => `${r.pubkey}/${r.target}`));
      expect(recordedByProtection.filter((r) => !protectionRecorded.has(`${protectionKey(r.key).toString("hex")}/${r.target}`))).toEqual([]);
    } finally {
      await client.end();
    }
  }, 120_000);
});

/** Waits until the standby has replayed everything the primary had written when this was called. */
async function caughtUp(primaryUrl: string, standbyUrl: string, password: string): Promise<void> {
  const [primary, standby] = [new pg.Client(toPoolConfig({ url: primaryUrl, password })), new pg.Client(toPoolConfig({ url: standbyUrl, password }))];
  await Promise.all([primary.connect(), standby.connect()]);
  try {
    const lsn = (await primary.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]!.lsn;
    await waitFor(
      "the standby replaying the primary's WAL",
      10_000,
      async () => (await standby.query<{ done: boolean }>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done", [lsn])).rows[0]!.done,
    );
  } finally {
    await Promise.all([primary.end(), standby.end()]);
  }
}

/** Polls `check` until true; returns how long it took. */
async function waitFor(what: string, limitMs: number, check: () => boolean | Promise<boolean | undefined>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
