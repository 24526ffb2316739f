/**
 * Losing the PostgreSQL server under load (`pg_ctl stop -m immediate`, i.e. a crash) and getting it back, with a
 * real signer process: while it is down no request gets 200 (503 with Retry-After instead) and /healthcheck says
 * DOWN (UNREACHABLE); once it is back the signer answers 200 again by itself, still pinned to its network; every
 * signature a client received, before, during and after, is recorded in the database.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig } from "./cli-process.js";
import { attestationBody, blockBody, http, interopPubkey, tokenWithInteropKeys, type HttpReply } from "./harness.js";

const KEYS = 4;
const work = tempDir();
let server: TestPostgres;
let token: TestToken;

beforeAll(async () => {
  [server, token] = await Promise.all([startPostgres(), tokenWithInteropKeys("vigil-test-signer-pgrestart", KEYS)]);
}, 120_000);
afterAll(async () => {
  killLeftovers();
  await server?.stop();
});

interface Answered {
  kind: "attestation" | "block";
  key: number;
  /** The attestation's target (its source is target - 1) or the block's slot. */
  n: number;
  sentAt: number;
  answeredAt: number;
  reply: HttpReply | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("PostgreSQL crashes and restarts under load: 503 + Retry-After while down, nothing acknowledged is lost, 200s resume without a restart", async () => {
  const url = await server.createDatabase();
  const dataDir = path.join(work, "data");
  const file = writeSignerConfig(token, dataDir, path.join(work, "signer.json"), {
    slashingDb: { postgres: { url, passwordFile: server.passwordFile } },
    logLevel: "warn",
  });
  const signer = spawnSigner(file, "ignore");
  const base = await signer.ready;

  // One loop per key and message type, each sending its next message as soon as the last is answered.
  const answered: Answered[] = [];
  let running = true;
  const loop = async (kind: Answered["kind"], key: number) => {
    for (let n = 1; running; n++) {
      const body = kind === "attestation" ? attestationBody(n - 1, n) : blockBody(n);
      const sentAt = performance.now();
      const reply = await http(`${base}/api/v1/eth2/sign/${interopPubkey(key)}`, { body }).catch(() => undefined);
      answered.push({ kind, key, n, sentAt, answeredAt: performance.now(), reply });
      if (reply?.status !== 200) await sleep(20); // a 503 says retry later; the next message is a new one
    }
  };
  const loops = Array.from({ length: KEYS }, (_, k) => [loop("attestation", k), loop("block", k)]).flat();

  try {
    await sleep(1_500);
    const stoppedAt = performance.now();
    await server.stopImmediate();
    const downFrom = performance.now();
    await sleep(2_500);
    const health = await http(`${base}/healthcheck`);
    expect(health.status).toBe(503);
    expect(health.json().checks).toContainEqual({ id: "slashing-protection-db-health-check", status: "DOWN", cause: "UNREACHABLE" });
    const downUntil = performance.now();
    await server.start();

    // Service resumes by itself: 200s for requests sent after the restart.
    const restartedAt = performance.now();
    const deadline = restartedAt + 15_000;
    while (!answered.some((a) => a.sentAt > restartedAt && a.reply?.status === 200) && performance.now() < deadline) await sleep(50);
    await sleep(500);
    running = false;
    await Promise.all(loops);

    const before = answered.filter((a) => a.answeredAt < stoppedAt);
    const whileDown = answered.filter((a) => a.sentAt >= downFrom && a.answeredAt <= downUntil);
    const after = answered.filter((a) => a.sentAt > restartedAt);
    expect(before.filter((a) => a.reply?.status === 200).length).toBeGreaterThan(20);
    expect(whileDown.length).toBeGreaterThan(20);
    for (const a of whileDown) {
      expect(a.reply?.status).toBe(503);
      expect(a.reply?.headers.get("retry-after")).toBe("1");
      expect(a.reply?.json()).toMatchObject({ code: "DB_WRITE_FAILED", cause: "UNREACHABLE" });
    }
    expect(after.filter((a) => a.reply?.status === 200).length).toBeGreaterThan(0);
    // Nothing but 200 or 503 at any time (a request cut by the crash is answered 503, never dropped).
    expect(answered.every((a) => a.reply?.status === 200 || a.reply?.status === 503)).toBe(true);
    expect((await http(`${base}/healthcheck`)).status).toBe(200);
    // The pin still holds after the reconnect.
    const otherNetwork = await http(`${base}/api/v1/eth2/sign/${interopPubkey(0)}`, {
      body: attestationBody(100_000, 100_001, { gvr: `0x${"22".repeat(32)}` }),
    });
    expect(otherNetwork.status).toBe(412);

    expect((await stopWithSigterm(signer)).code).toBe(0);

    // Every 200 a client received is in the database.
    const c = await server.connect(url);
    try {
      const atts = new Set(
        (
          await c.query<{ k: string; t: string }>(
            "SELECT encode(v.pubkey, 'hex') AS k, a.target_epoch::text AS t FROM signed_attestations a JOIN validators v ON v.id = a.validator_id",
          )
        ).rows.map((r) => `0x${r.k}/${r.t}`),
      );
      const blocks = new Set(
        (
          await c.query<{ k: string; s: string }>(
            "SELECT encode(v.pubkey, 'hex') AS k, b.slot::text AS s FROM signed_blocks b JOIN validators v ON v.id = b.validator_id",
          )
        ).rows.map((r) => `0x${r.k}/${r.s}`),
      );
      const signed = answered.filter((a) => a.reply?.status === 200);
      const missing = signed.filter((a) => !(a.kind === "attestation" ? atts : blocks).has(`${interopPubkey(a.key)}/${a.n}`));
      expect(missing).toEqual([]);
      console.log(
        `postgres restart: ${signed.length} signed, ${whileDown.length} answered 503 while down, ` +
          `first 200 after restart in ${Math.round(Math.min(...after.filter((a) => a.reply?.status === 200).map((a) => a.answeredAt)) - restartedAt)} ms`,
      );
    } finally {
      await c.end();
    }
  } finally {
    running = false;
    await Promise.allSettled(loops);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
