// /healthcheck says DOWN (503) when a slashable message could not be signed now, naming the cause; a signing
// request refused because the database (or the durable audit feed) failed is a 503 naming which and the cause,
// counted as db_unavailable (audit_unavailable), not as overload. Real signer, real token, the data dir on a small tmpfs or ext4 image.
// (Before: UP while nothing could be signed, and database failures counted as "overloaded".)
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSigner } from "../../signer/index.js";
import { tokenDir, type TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { fillDisk, makeExt4ReadOnly, metrics, metricValue, mountExt4, mountTmpfs, unmount } from "./cli-process.js";
import { attestationBody, GVR, http, interopPubkey, sqliteFile, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const KEYS = 2;
const work = tempDir("vigil-fail-health-");
let token: TestToken;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-fail-health", KEYS);
}, 120_000);
afterAll(() => token?.destroy());

let epoch = 0;
function sign(signer: RunningSigner) {
  const e = epoch++;
  return http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(e % KEYS)}`, { body: attestationBody(e, e + 1) });
}

/** Signs until one fails (space the WAL already holds may take a few more commits); returns the failed reply. */
async function signUntilRefused(signer: RunningSigner) {
  for (let i = 0; i < 2_000; i++) {
    const res = await sign(signer);
    if (res.status !== 200) return res;
  }
  throw new Error("signing never failed");
}

const health = async (signer: RunningSigner) => {
  const res = await http(`${signer.url}/healthcheck`);
  return { status: res.status, body: res.json() as { outcome: string; checks: { id: string; status: string; cause?: string }[] } };
};
type Check = { id: string; status: string; cause?: string; checks?: Check[] };
const check = (body: { checks: Check[] }, id: string) => body.checks.find((c) => c.id === id);
/** The write probe runs at most once a second: wait past that so the next answer is a fresh probe. */
const pastProbeCache = () => new Promise((r) => setTimeout(r, 1_200));

describe("health and signing with the slashing database unwritable", () => {
  it("disk full: DOWN naming the failing component and DISK_FULL, signing 503 with cause DISK_FULL (never overloaded); space freed: UP and signing again", async (ctx) => {
    const mnt = path.join(work, "full");
    const why = mountTmpfs(mnt, 4096);
    if (why) {
      console.log(`skipped: ${why}`);
      ctx.skip();
      return;
    }
    const { signer } = await start(testConfig(token, path.join(mnt, "data"), { genesisValidatorsRoot: GVR, logLevel: "silent" }));
    try {
      expect((await sign(signer)).status).toBe(200);
      expect(await health(signer)).toMatchObject({ status: 200, body: { outcome: "UP" } });

      // Keep the disk full: space SQLite frees (a rolled-back WAL tail) is taken again at once, as a runaway log
      // would.
      const filler = fillDisk(mnt);
      const refill = setInterval(() => fillDisk(mnt), 10);
      try {
        const refused = await signUntilRefused(signer);
        expect(refused.status).toBe(503);
        // Two writes stand between a block or attestation and its release: the slashing commit, then the audit
        // entry's fdatasync. Which one runs out of room first depends on the free blocks each file still has;
        // either way the cause is DISK_FULL and the reply names which write failed.
        const body = refused.json() as { code: string; cause?: string };
        expect(["DB_WRITE_FAILED", "AUDIT_LOG_UNAVAILABLE"]).toContain(body.code);
        expect(body.cause).toBe("DISK_FULL");
        expect(refused.headers.get("retry-after")).not.toBeNull();
        const failing =
          body.code === "DB_WRITE_FAILED"
            ? { check: "slashing-protection-db-health-check", outcome: "db_unavailable", counter: "vigil_signer_slashing_db_unavailable_total" }
            : { check: "audit-log", outcome: "audit_unavailable", counter: "vigil_signer_audit_log_unavailable_total" };

        await pastProbeCache(); // past the probe cache: a tiny probe may fit, the failed check still counts
        const down = await health(signer);
        expect(down.status).toBe(503);
        expect(down.body.outcome).toBe("DOWN");
        expect(check(down.body, failing.check)).toEqual({ id: failing.check, status: "DOWN", cause: "DISK_FULL" });
        expect(check(down.body, "bls-workers")?.status).toBe("UP");

        const m = await metrics(signer.url);
        expect(metricValue(m, "vigil_signer_requests_total", `type="ATTESTATION",outcome="${failing.outcome}"`)).toBeGreaterThan(0);
        expect(metricValue(m, "vigil_signer_requests_total", 'type="ATTESTATION",outcome="overloaded"')).toBe(0);
        expect(metricValue(m, failing.counter, 'cause="DISK_FULL"')).toBeGreaterThan(0);
        expect(metricValue(m, "vigil_signer_health_check_up", `check="${failing.check}"`)).toBe(0);
        expect(metricValue(m, "vigil_signer_health_check_up", 'check="bls-workers"')).toBe(1);
      } finally {
        clearInterval(refill);
      }

      fs.rmSync(filler);
      expect((await sign(signer)).status).toBe(200); // signing resumes at once
      const up = await health(signer);
      expect(up.status).toBe(200);
      expect(check(up.body, "slashing-protection-db-health-check")).toEqual({ id: "slashing-protection-db-health-check", status: "UP" });
      expect(check(up.body, "audit-log")).toEqual({ id: "audit-log", status: "UP" });
      const after = await metrics(signer.url);
      expect(metricValue(after, "vigil_signer_health_check_up", 'check="slashing-protection-db-health-check"')).toBe(1);
      expect(metricValue(after, "vigil_signer_health_check_up", 'check="audit-log"')).toBe(1);
    } finally {
      await signer.close().catch(() => {});
      unmount(mnt);
    }
  }, 60_000);

  it("filesystem turned read-only under the signer: DOWN with READ_ONLY, signing 503", async (ctx) => {
    const mnt = path.join(work, "ro");
    const why = mountExt4(mnt, path.join(work, "ro.img"), 16);
    if (why) {
      console.log(`skipped: ${why}`);
      ctx.skip();
      return;
    }
    const { signer } = await start(testConfig(token, path.join(mnt, "data"), { genesisValidatorsRoot: GVR, logLevel: "silent" }));
    try {
      expect((await sign(signer)).status).toBe(200);
      makeExt4ReadOnly(mnt);
      await pastProbeCache();
      const down = await health(signer);
      expect(down.status).toBe(503);
      expect(check(down.body, "slashing-protection-db-health-check")).toEqual({
        id: "slashing-protection-db-health-check",
        status: "DOWN",
        cause: "READ_ONLY",
      });
      const refused = await sign(signer);
      expect(refused.status).toBe(503);
      expect(refused.json()).toMatchObject({ code: "DB_WRITE_FAILED", cause: "READ_ONLY" });
    } finally {
      await signer.close().catch(() => {});
      unmount(mnt);
    }
  }, 60_000);

  it("database file deleted under the signer: nothing more is recorded into the vanished file; DOWN with FILE_GONE", async () => {
    const dataDir = path.join(work, "gone");
    const config = testConfig(token, dataDir, { genesisValidatorsRoot: GVR, logLevel: "silent" });
    const { signer } = await start(config);
    try {
      expect((await sign(signer)).status).toBe(200);
      for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(sqliteFile(config) + suffix, { force: true });
      const refused = await sign(signer);
      expect(refused.status).toBe(503);
      expect(refused.json()).toMatchObject({ code: "DB_WRITE_FAILED", cause: "FILE_GONE" });
      await pastProbeCache();
      const down = await health(signer);
      expect(down.status).toBe(503);
      expect(check(down.body, "slashing-protection-db-health-check")).toEqual({
        id: "slashing-protection-db-health-check",
        status: "DOWN",
        cause: "FILE_GONE",
      });
    } finally {
      await signer.close().catch(() => {});
    }
  }, 60_000);
});

describe("health with the token gone", () => {
  it("key-store DOWN with TOKEN_GONE; keys already loaded keep signing, so the outcome stays UP", async () => {
    const own = await tokenWithInteropKeys("vigil-test-fail-health-gone", KEYS);
    const { signer } = await start(testConfig(own, path.join(work, "token"), { genesisValidatorsRoot: GVR, logLevel: "silent" }));
    try {
      expect(check((await health(signer)).body, "keys-check")).toMatchObject({ id: "keys-check", status: "UP" });
      // SoftHSM2 keeps each token in a directory holding token.object, which carries the label.
      const dir = fs
        .readdirSync(tokenDir())
        .map((d) => path.join(tokenDir(), d))
        .find((d) => fs.existsSync(path.join(d, "token.object")) && fs.readFileSync(path.join(d, "token.object")).includes(own.label));
      expect(dir).toBeDefined();
      fs.rmSync(dir!, { recursive: true, force: true });

      const h = await health(signer);
      expect(check(h.body, "keys-check")).toMatchObject({ id: "keys-check", status: "DOWN", cause: "TOKEN_GONE" });
      expect(check(h.body, "keys-check")?.checks?.[0]).toMatchObject({ id: "keys-check/pkcs11-token-loading", status: "DOWN", cause: "TOKEN_GONE" });
      expect(h.status).toBe(200);
      expect(h.body.outcome).toBe("UP");
      expect((await sign(signer)).status).toBe(200);
      expect(metricValue(await metrics(signer.url), "vigil_signer_health_check_up", 'check="keys-check"')).toBe(0);
    } finally {
      await signer.close().catch(() => {});
      own.destroy();
    }
  }, 120_000);
});
