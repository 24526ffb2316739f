// Failed authentications on the admin, keymanager and eth2 APIs, over real HTTP: counted in
// vigil_signer_auth_failures_total, logged at most once per interval per API without the token, and throttled
// (429 + Retry-After) per address once the burst is spent, while a correct token still passes at once.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSigner } from "../../signer/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { pino } from "pino";
import { startSigner } from "../../signer/index.js";
import { AuthFailureGuard } from "../../signer/server/auth-failures.js";
import { http, interopPubkey, LogCapture, randaoBody, testConfig, tokenWithInteropKeys, writePrivate } from "./harness.js";

const work = tempDir("vigil-auth-failures-");
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const KM_TOKEN = "keymanager-token-0123456789abcdef";
const CLIENT_TOKEN = "client-token-0123456789abcdef";
const WRONG = "wrong-token-SECRET-GUESS-0123456789";
/** The default per-address burst (auth-failures.ts); the refill is slowed so timing cannot matter. */
const BURST = 10;
const REFILL_SECONDS = 4;
let token: TestToken;
let signer: RunningSigner;
let log: LogCapture;

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const failures = async (api: string): Promise<number> => {
  const text = (await http(`${signer.url}/metrics`)).text;
  const m = new RegExp(`^vigil_signer_auth_failures_total\\{api="${api}"\\} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
};
const authLines = (api: string) => log.lines().filter((l) => l.api === api && String(l.msg).includes("authentication failed"));

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-auth-failures", 1);
  const config = testConfig(token, path.join(work, "signer"), {
    clients: [{ id: "primary", tokenFile: writePrivate(path.join(work, "client.token"), CLIENT_TOKEN), keys: "*" }],
    admin: { tokenFile: writePrivate(path.join(work, "admin.token"), ADMIN_TOKEN) },
    keymanager: { enabled: true, tokenFile: writePrivate(path.join(work, "km.token"), KM_TOKEN) },
    logLevel: "warn",
  });
  log = new LogCapture();
  signer = await startSigner(config, { logDestination: log, authThrottle: { perSourcePerSecond: 1 / REFILL_SECONDS } });
}, 120_000);
afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

describe("failed authentications", () => {
  it("admin: counted, one log line without the token, 429 + Retry-After past the burst; the right token still fences", async () => {
    for (let i = 0; i < BURST; i++) {
      const res = await http(`${signer.url}/admin/v1/fencing`, { headers: bearer(WRONG) });
      expect(res.status).toBe(401);
      expect(res.json().code).toBe("UNAUTHENTICATED");
    }
    const throttled = await http(`${signer.url}/admin/v1/fencing`, { headers: bearer(WRONG) });
    expect(throttled.status).toBe(429);
    expect(throttled.json().code).toBe("AUTH_THROTTLED");
    expect(Number(throttled.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(throttled.headers.get("retry-after"))).toBeLessThanOrEqual(REFILL_SECONDS);
    // The watchdog's correct token is not locked out by the flood from its own address.
    const fence = await http(`${signer.url}/admin/v1/clients/primary/disable`, { body: { generation: 1 }, headers: bearer(ADMIN_TOKEN) });
    expect(fence.status).toBe(200);
    expect(fence.json().enabled).toBe(false);
    expect(await failures("admin")).toBe(BURST + 1);
    expect(authLines("admin")).toHaveLength(1); // rate-limited: one line for 11 failures
    expect(log.text).not.toContain(WRONG);
  });

  it("keymanager and eth2 failures are counted per API; a client's right token still signs", async () => {
    // The address already spent its burst above: wrong attempts are answered 429 on every API.
    const km = await http(`${signer.url}/eth/v1/keystores`, { headers: bearer(WRONG) });
    expect(km.status).toBe(429);
    expect(km.headers.get("retry-after")).not.toBeNull();
    const sign = await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: randaoBody(1), headers: bearer(WRONG) });
    expect(sign.status).toBe(429);
    expect(sign.json().code).toBe("AUTH_THROTTLED");
    const keys = await http(`${signer.url}/api/v1/eth2/publicKeys`);
    expect(keys.status).toBe(429);
    expect(await failures("keymanager")).toBe(1);
    expect(await failures("eth2")).toBe(2);
    expect(authLines("eth2")).toHaveLength(1);
    expect(log.text).not.toContain(WRONG);
    // Right tokens pass while the address is throttled.
    expect((await http(`${signer.url}/eth/v1/keystores`, { headers: bearer(KM_TOKEN) })).status).toBe(200);
    await http(`${signer.url}/admin/v1/clients/primary/enable`, { body: { generation: 2 }, headers: bearer(ADMIN_TOKEN) });
    expect((await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: randaoBody(1), headers: bearer(CLIENT_TOKEN) })).status).toBe(200);
  });

  it("the bucket refills: after Retry-After a wrong attempt is answered 401 again", { timeout: 30_000 }, async () => {
    // Spend whatever refilled since the tests above.
    let res = await http(`${signer.url}/admin/v1/fencing`, { headers: bearer(WRONG) });
    for (let i = 0; i < BURST && res.status === 401; i++) res = await http(`${signer.url}/admin/v1/fencing`, { headers: bearer(WRONG) });
    expect(res.status).toBe(429);
    await new Promise((r) => setTimeout(r, Number(res.headers.get("retry-after")) * 1000 + 100));
    expect((await http(`${signer.url}/admin/v1/fencing`, { headers: bearer(WRONG) })).status).toBe(401);
  });
});

describe("the throttle across addresses", () => {
  it("the global bucket throttles many addresses together; the next log line says how many were left out", () => {
    let now = 0;
    const lines = new LogCapture();
    const counted: string[] = [];
    const guard = new AuthFailureGuard(
      pino(lines),
      (api, throttled) => counted.push(`${api}:${throttled}`),
      { perSourceBurst: 5, globalBurst: 3, globalPerSecond: 1, logIntervalMs: 10_000 },
      () => now,
    );
    expect(guard.failed("admin", "10.0.0.1", "wrong bearer token").throttled).toBe(false);
    expect(guard.failed("admin", "10.0.0.2", "wrong bearer token").throttled).toBe(false);
    expect(guard.failed("admin", "10.0.0.3", "wrong bearer token").throttled).toBe(false);
    expect(guard.failed("admin", "10.0.0.4", "wrong bearer token")).toEqual({ throttled: true, retryAfterSeconds: 1 });
    now += 1_000;
    expect(guard.failed("admin", "10.0.0.5", "wrong bearer token").throttled).toBe(false);
    expect(counted).toEqual(["admin:false", "admin:false", "admin:false", "admin:true", "admin:false"]);
    now += 10_000;
    guard.failed("admin", "10.0.0.6", "missing bearer token");
    const logged = lines.lines();
    expect(logged).toHaveLength(2);
    expect(logged[1]).toMatchObject({ api: "admin", remote: "10.0.0.6", suppressedSinceLastLine: 4 });
  });
});
