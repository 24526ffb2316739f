// The metrics the dashboard and the alert rules read (issue 14), each moved by its real event on a real signer
// (HTTP on loopback, SoftHSM2 token, SQLite file): build info, readiness, a client's last signature, keymanager
// operations, 401 and 403 refusals, key-store errors, the slashing database's size. And the alerts' two
// scenarios: a client disabled through the admin API that then stays silent, and a storm of wrong tokens.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { create } from "@chainsafe/bls-keystore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSigner, type RunningSigner } from "../../signer/index.js";
import { openKeyStore } from "../../signer/keystore/index.js";
import { APPLICATION } from "../../signer/keystore/envelope.js";
import { P, TokenSession } from "../../signer/keystore/pkcs11-session.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { fillDisk, metricValue, mountTmpfs, unmount } from "./cli-process.js";
import { attestationBody, GVR, http, interopPubkey, LogCapture, sqliteFile, testConfig, tokenWithInteropKeys, writePrivate } from "./harness.js";

const work = tempDir("vigil-operator-metrics-");
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const KM_TOKEN = "keymanager-token-0123456789abcdef";
const PRIMARY_TOKEN = "primary-token-0123456789abcdef";
const LIMITED_TOKEN = "limited-token-0123456789abcdef";
const WRONG = "wrong-token-SECRET-GUESS-0123456789";
/** The default per-address burst of failed authentications (auth-failures.ts); the refill is slowed so timing cannot matter. */
const BURST = 10;
const KEYS = 3;

let token: TestToken;
let signer: RunningSigner;
let log: LogCapture;
let sqlite: string;

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const scrape = async () => (await http(`${signer.url}/metrics`)).text;
const value = async (name: string, labels = "") => metricValue(await scrape(), name, labels);
const sampleLine = (body: string, name: string) => body.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
let epoch = 0;
const sign = (clientToken: string, key = 0) => {
  const e = epoch++;
  return http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(key)}`, { body: attestationBody(e, e + 1), headers: bearer(clientToken) });
};
const km = (method: string, body?: unknown, auth = KM_TOKEN) =>
  http(`${signer.url}/eth/v1/keystores`, { method, ...(body === undefined ? {} : { body }), headers: bearer(auth) });
const admin = (route: string, body: unknown) => http(`${signer.url}/admin/v1${route}`, { body, headers: bearer(ADMIN_TOKEN) });

async function keystoreJson(i: number, password: string): Promise<string> {
  const kdf = { function: "pbkdf2" as const, params: { dklen: 32, c: 2, prf: "hmac-sha256" as const, salt: crypto.randomBytes(32).toString("hex") } };
  return JSON.stringify(await create(password, interopSecretKey(i), Buffer.from(interopPubkey(i).slice(2), "hex"), `m/12381/3600/${i}/0/0`, "", kdf));
}

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-operator-metrics", KEYS);
  const config = testConfig(token, path.join(work, "signer"), {
    genesisValidatorsRoot: GVR,
    clients: [
      { id: "primary", tokenFile: writePrivate(path.join(work, "primary.token"), PRIMARY_TOKEN), keys: "*" },
      { id: "limited", tokenFile: writePrivate(path.join(work, "limited.token"), LIMITED_TOKEN), keys: [interopPubkey(0)] },
    ],
    admin: { tokenFile: writePrivate(path.join(work, "admin.token"), ADMIN_TOKEN) },
    keymanager: { enabled: true, tokenFile: writePrivate(path.join(work, "km.token"), KM_TOKEN) },
    logLevel: "info",
  });
  sqlite = sqliteFile(config);
  log = new LogCapture();
  signer = await startSigner(config, { logDestination: log, authThrottle: { perSourcePerSecond: 1 / 30, globalPerSecond: 1 / 30 } });
}, 120_000);
afterAll(async () => {
  await signer?.close().catch(() => {});
  token?.destroy();
});

describe("the metrics behind the dashboard and the alerts", () => {
  it("build info and readiness are published; the slashing database's size is the file's and grows as checks are recorded", async () => {
    const body = await scrape();
    expect(sampleLine(body, "vigil_build_info")).toMatch(/^vigil_build_info\{version="0\.1\.0",commit="([0-9a-f]{7,40}|unknown)"\} 1$/);
    expect(metricValue(body, "vigil_signer_ready")).toBe(1);
    // Counters that alerts take increase() of are there at 0 before their first event (a series born at 40 hides 40).
    for (const series of [
      'vigil_signer_auth_failures_total{api="eth2"}',
      'vigil_signer_auth_throttled_total{api="admin"}',
      'vigil_signer_keystore_errors_total{operation="reload"}',
      'vigil_signer_keymanager_operations_total{operation="import",outcome="error"}',
      "vigil_signer_audit_log_write_failures_total",
    ])
      expect(body.split("\n")).toContain(`${series} 0`);
    const before = metricValue(body, "vigil_slashing_db_size_bytes");
    const onDisk = () => fs.statSync(sqlite).size + (fs.existsSync(`${sqlite}-wal`) ? fs.statSync(`${sqlite}-wal`).size : 0);
    expect(before).toBeGreaterThan(0);
    expect(before).toBe(onDisk()); // nothing signs meanwhile: the gauge is the file and its -wal
    // Records fill free space in pages already there (and a checkpointed WAL is reused) before the files grow.
    let after = before;
    for (let signed = 0; signed < 2_000 && after <= before; signed += 50) {
      for (let i = 0; i < 50; i++) expect((await sign(PRIMARY_TOKEN, 1)).status).toBe(200);
      after = await value("vigil_slashing_db_size_bytes");
    }
    expect(after).toBeGreaterThan(before);
    expect(after).toBe(onDisk());
  });

  it("a signature sets its client's last-signature timestamp; a client that never signed has none", async () => {
    const t0 = Date.now() / 1000;
    expect((await sign(PRIMARY_TOKEN)).status).toBe(200);
    const t1 = Date.now() / 1000;
    const body = await scrape();
    const at = metricValue(body, "vigil_signer_client_last_signature_timestamp_seconds", 'client="primary"');
    expect(at).toBeGreaterThanOrEqual(t0 - 0.001);
    expect(at).toBeLessThanOrEqual(t1 + 0.001);
    expect(body).not.toContain('vigil_signer_client_last_signature_timestamp_seconds{client="limited"}');
  });

  it("keymanager list, import and delete count one per operation and key, by the API's status", async () => {
    const op = (operation: string, outcome: string) => value("vigil_signer_keymanager_operations_total", `operation="${operation}",outcome="${outcome}"`);
    expect((await km("GET")).status).toBe(200);
    expect(await op("list", "ok")).toBe(1);
    const ks = await keystoreJson(KEYS, "pw-import-0");
    expect((await km("POST", { keystores: [ks], passwords: ["pw-import-0"] })).json().data).toEqual([{ status: "imported" }]);
    expect((await km("POST", { keystores: [ks], passwords: ["pw-import-0"] })).json().data).toEqual([{ status: "duplicate" }]);
    expect(await op("import", "imported")).toBe(1);
    expect(await op("import", "duplicate")).toBe(1);
    const del = await km("DELETE", { pubkeys: [interopPubkey(KEYS)] });
    expect(del.json().data).toEqual([{ status: "deleted" }]);
    expect((await km("DELETE", { pubkeys: [interopPubkey(KEYS)] })).json().data).toEqual([{ status: "not_found" }]);
    expect(await op("delete", "deleted")).toBe(1);
    expect(await op("delete", "not_found")).toBe(1);
  });

  it("a wrong token (401) and a forbidden key (403) are both counted and logged, rate-limited, never with the token", async () => {
    const eth2 = () => value("vigil_signer_auth_failures_total", 'api="eth2"');
    const before = await eth2();
    expect((await sign(WRONG)).status).toBe(401);
    expect(await eth2()).toBe(before + 1);
    const forbidden = await sign(LIMITED_TOKEN, 1); // interop key 1 is outside this client's list
    expect(forbidden.status).toBe(403);
    expect(forbidden.json().code).toBe("KEY_NOT_ALLOWED");
    expect(await eth2()).toBe(before + 2);
    for (let i = 0; i < 5; i++) expect((await sign(LIMITED_TOKEN, 1)).status).toBe(403);
    expect(await eth2()).toBe(before + 7);
    // The keymanager API answers a wrong token 403: counted under its API.
    expect((await km("GET", undefined, WRONG)).status).toBe(403);
    expect(await value("vigil_signer_auth_failures_total", 'api="keymanager"')).toBe(1);

    const lines = log.lines().filter((l) => l.api === "eth2");
    const failedLines = lines.filter((l) => String(l.msg).includes("authentication failed"));
    const forbiddenLines = lines.filter((l) => String(l.msg).includes("request forbidden"));
    expect(failedLines).toHaveLength(1);
    expect(forbiddenLines).toHaveLength(1); // six 403s, one line (the next ones are counted in suppressedSinceLastLine)
    expect(forbiddenLines[0]).toMatchObject({ level: 40, remote: "127.0.0.1", reason: expect.stringContaining("client limited may not use key") });
    expect(log.text).not.toContain(WRONG);
    expect(log.text).not.toContain(LIMITED_TOKEN);
  });

  it("issue 14: a client disabled through the admin API that then stays silent: enabled 0, its last signature stops advancing", async () => {
    expect((await sign(PRIMARY_TOKEN)).status).toBe(200);
    let body = await scrape();
    expect(metricValue(body, "vigil_signer_client_enabled", 'client="primary"')).toBe(1);
    const lastSigned = metricValue(body, "vigil_signer_client_last_signature_timestamp_seconds", 'client="primary"');
    const disabled = await admin("/clients/primary/disable", { generation: 1 });
    expect(disabled.status).toBe(200);
    const failuresBefore = metricValue(body, "vigil_signer_auth_failures_total", 'api="eth2"');
    // Its validator client keeps asking (or stops): nothing is signed for it either way.
    for (let i = 0; i < 3; i++) expect((await sign(PRIMARY_TOKEN)).json().code).toBe("CLIENT_DISABLED");
    await new Promise((r) => setTimeout(r, 1_100));
    body = await scrape();
    expect(metricValue(body, "vigil_signer_client_enabled", 'client="primary"')).toBe(0);
    expect(metricValue(body, "vigil_signer_client_last_signature_timestamp_seconds", 'client="primary"')).toBe(lastSigned);
    expect(Date.now() / 1000 - lastSigned).toBeGreaterThan(1); // the age an alert compares with N slots grows
    expect(metricValue(body, "vigil_signer_auth_failures_total", 'api="eth2"')).toBe(failuresBefore + 3); // its 403s
    expect(metricValue(body, "vigil_signer_client_enabled", 'client="limited"')).toBe(1);
  });

  it("issue 14: a storm of wrong tokens moves vigil_signer_auth_failures_total by the number sent, the 429s past the burst vigil_signer_auth_throttled_total", async () => {
    const STORM = 40;
    const before = await scrape();
    const failures0 = metricValue(before, "vigil_signer_auth_failures_total", 'api="eth2"');
    const throttled0 = metricValue(before, "vigil_signer_auth_throttled_total", 'api="eth2"');
    const replies = await Promise.all(Array.from({ length: STORM }, () => sign(WRONG)));
    const statuses = replies.map((r) => r.status);
    const unauthenticated = statuses.filter((s) => s === 401).length;
    const tooMany = statuses.filter((s) => s === 429).length;
    expect(unauthenticated + tooMany).toBe(STORM);
    // This address spent 3 of its burst above (two 401s here, one on the keymanager API); the refill is 1 per 30 s.
    expect(unauthenticated).toBeLessThanOrEqual(BURST);
    expect(tooMany).toBeGreaterThanOrEqual(STORM - BURST);
    const after = await scrape();
    expect(metricValue(after, "vigil_signer_auth_failures_total", 'api="eth2"')).toBe(failures0 + STORM);
    expect(metricValue(after, "vigil_signer_auth_throttled_total", 'api="eth2"')).toBe(throttled0 + tooMany);
    expect(log.text).not.toContain(WRONG);
  });

  it("an audit-feed write that fails counts, and the signer is not ready while it withholds signatures; ready again once it can write", async (ctx) => {
    // The data directory (audit feed) on a small tmpfs, the slashing database elsewhere: only the audit writes fail.
    const mnt = path.join(work, "audit-full");
    const why = mountTmpfs(mnt, 4096);
    if (why) {
      console.log(`skipped: ${why}`);
      ctx.skip();
      return;
    }
    let own: RunningSigner | undefined;
    try {
      own = await startSigner(
        testConfig(token, path.join(mnt, "data"), {
          genesisValidatorsRoot: GVR,
          slashingDb: { sqlite: { path: path.join(work, "audit-full.sqlite") } },
          logLevel: "silent",
        }),
      );
      const url = own.url;
      const signOwn = () => {
        const e = epoch++;
        return http(`${url}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: attestationBody(e, e + 1) });
      };
      const ownMetrics = async () => (await http(`${url}/metrics`)).text;
      expect((await signOwn()).status).toBe(200);
      expect(metricValue(await ownMetrics(), "vigil_signer_audit_log_write_failures_total")).toBe(0);
      const filler = fillDisk(mnt);
      let refused: Awaited<ReturnType<typeof signOwn>> | undefined;
      for (let i = 0; i < 200 && refused === undefined; i++) {
        const res = await signOwn();
        if (res.status !== 200) refused = res;
      }
      expect(refused?.status).toBe(503);
      expect(refused?.json()).toMatchObject({ code: "AUDIT_LOG_UNAVAILABLE", cause: "DISK_FULL" });
      const down = await ownMetrics();
      expect(metricValue(down, "vigil_signer_audit_log_write_failures_total")).toBeGreaterThanOrEqual(1);
      expect(metricValue(down, "vigil_signer_ready")).toBe(0);
      fs.rmSync(filler);
      expect((await signOwn()).status).toBe(200);
      expect(metricValue(await ownMetrics(), "vigil_signer_ready")).toBe(1);
    } finally {
      await own?.close().catch(() => {});
      unmount(mnt);
    }
  }, 60_000);
  it("a key-store error counts: a record on the token fails authentication when a reload loads it", async () => {
    expect(await value("vigil_signer_keystore_errors_total", 'operation="load"')).toBe(0);
    // A new key goes onto the token, then one byte of its sealed record flips (a corrupted or forged record).
    const fresh = KEYS + 1;
    const store = openKeyStore(token.config);
    try {
      await store.importKeys([{ secretKey: interopSecretKey(fresh), pubkey: interopPubkey(fresh) }]);
    } finally {
      await store.close();
    }
    const ts = TokenSession.open({ module: token.config.module, tokenLabel: token.label, readWrite: true }, () => token.pin);
    try {
      ts.pkcs11.C_FindObjectsInit(ts.session, [
        { type: P.CKA_CLASS, value: P.CKO_DATA },
        { type: P.CKA_APPLICATION, value: APPLICATION },
        { type: P.CKA_LABEL, value: interopPubkey(fresh) },
      ]);
      const [h] = ts.pkcs11.C_FindObjects(ts.session, 1);
      ts.pkcs11.C_FindObjectsFinal(ts.session);
      const [attr] = ts.pkcs11.C_GetAttributeValue(ts.session, h!, [{ type: P.CKA_VALUE }]);
      const sealed = Buffer.from(attr!.value!);
      sealed[20]! ^= 0x01;
      ts.pkcs11.C_DestroyObject(ts.session, h!);
      ts.pkcs11.C_CreateObject(ts.session, [
        { type: P.CKA_CLASS, value: P.CKO_DATA },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_APPLICATION, value: APPLICATION },
        { type: P.CKA_LABEL, value: interopPubkey(fresh) },
        { type: P.CKA_VALUE, value: sealed },
      ]);
    } finally {
      ts.close();
    }
    expect((await http(`${signer.url}/reload`, { method: "POST" })).status).toBe(202);
    let view: { status: string; lastError: string | null } = { status: "running", lastError: null };
    for (let i = 0; i < 200 && view.status === "running"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      view = (await http(`${signer.url}/reload`)).json();
    }
    expect(view.status).toBe("completed_with_errors");
    expect(view.lastError).toContain(interopPubkey(fresh));
    expect(await value("vigil_signer_keystore_errors_total", 'operation="load"')).toBe(1);
    expect(await value("vigil_signer_keys_loaded")).toBe(KEYS); // the refused key is not signable; the others are
  });
});
