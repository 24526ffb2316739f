// No web page may obtain a signature: every listener refuses a foreign Host (DNS rebinding) and a browser's Origin
// before routing; per-client request types (no VOLUNTARY_EXIT by default); no block or attestation far ahead of the
// wall clock is recorded (one bad request must not refuse every later real one); HTTPS on dedicated listeners.
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpGuard } from "../../common/index.js";
import { parseSignerConfig, type RunningSigner } from "../../signer/index.js";
import { WallClockGuard } from "../../signer/server/wall-clock-guard.js";
import { validateSignRequest } from "../../signer/signing/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { selfSignedCertificate } from "../helpers/tls.js";
import {
  attestationBody,
  blockBody,
  GVR,
  http as fetchHttp,
  interopPubkey,
  randaoBody,
  start,
  testConfig,
  tokenWithInteropKeys,
  writePrivate,
} from "./harness.js";

const work = tempDir("vigil-signer-guard-");
const pk = (i: number) => interopPubkey(i);
const VC_TOKEN = "vc-token-0123456789abcdef";
const EXITER_TOKEN = "exiter-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const KM_TOKEN = "keymanager-token-0123456789abcdef";
// The wall clock: epoch 10, in the middle of it, with long slots so no test crosses an epoch boundary.
const SECONDS_PER_SLOT = 60;
const SLOTS_PER_EPOCH = 8; // minimal preset
const CURRENT_EPOCH = 10;
const GENESIS_TIME = Math.floor(Date.now() / 1000) - (CURRENT_EPOCH * SLOTS_PER_EPOCH + SLOTS_PER_EPOCH / 2) * SECONDS_PER_SLOT;
const EVIL = "evil.example";

let token: TestToken;
let signer: RunningSigner; // clients, admin, keymanager, separate metrics, a TLS client listener, genesis time known
let plain: RunningSigner; // the embedded default's shape: no clients, no http section
let tlsDir: string;

interface RawReply {
  status: number;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: a test reads reply fields it asserts on
  json: () => any;
}

/** A request with exactly the headers given (Host included: fetch would set it from the URL). */
function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer } = {}): Promise<RawReply> {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
        headers: { ...(opts.body !== undefined ? { "content-type": "application/json" } : {}), ...opts.headers },
        agent: false,
        ...(opts.ca ? { ca: opts.ca, checkServerIdentity: () => undefined } : {}),
      }, // the pinned CA is the check: Host may name another host
      (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body, json: () => JSON.parse(body) }));
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

const port = (url: string) => new URL(url).port;
const exitBody = (epoch = 1) => ({
  type: "VOLUNTARY_EXIT",
  fork_info: { fork: { previous_version: "0x00000001", current_version: "0x01000001", epoch: "0" }, genesis_validators_root: GVR },
  voluntary_exit: { epoch: String(epoch), validator_index: "0" },
});
const depositBody = () => ({
  type: "DEPOSIT",
  deposit: { pubkey: pk(0), withdrawal_credentials: `0x${"00".repeat(32)}`, amount: "32000000000", genesis_fork_version: "0x00000001" },
});
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const auditTypes = async (s: RunningSigner) =>
  (await fetchHttp(`${s.url}/admin/v1/signatures?after=0&limit=10000`, { headers: bearer(ADMIN_TOKEN) }))
    .json()
    .signatures.map((e: { type: string; clientId: string }) => `${e.clientId}:${e.type}`);

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-guard", 4);
  tlsDir = path.join(work, "tls");
  selfSignedCertificate(tlsDir, "server", "localhost", "IP:127.0.0.1");
  ({ signer } = await start(
    testConfig(token, path.join(work, "signer"), {
      network: { name: "minimal-devnet", genesisTime: GENESIS_TIME, secondsPerSlot: SECONDS_PER_SLOT },
      http: { hostAllowlist: ["signer.internal", "proxy.example:8443"] },
      clients: [
        { id: "vc", tokenFile: writePrivate(path.join(work, "vc.token"), VC_TOKEN), keys: "*" },
        { id: "exiter", tokenFile: writePrivate(path.join(work, "exiter.token"), EXITER_TOKEN), keys: "*", allowedTypes: "*" },
        { id: "lodestar", listen: { host: "127.0.0.1", port: 0 }, keys: "*" },
        {
          id: "secure",
          listen: { host: "127.0.0.1", port: 0, tls: { cert: path.join(tlsDir, "server.crt"), key: path.join(tlsDir, "server.key") } },
          keys: [pk(3)],
        },
      ],
      admin: { tokenFile: writePrivate(path.join(work, "admin.token"), ADMIN_TOKEN) },
      keymanager: { enabled: true, tokenFile: writePrivate(path.join(work, "km.token"), KM_TOKEN) },
      metrics: { host: "127.0.0.1", port: 0 },
      logLevel: "warn",
    }),
  ));
  ({ signer: plain } = await start(
    testConfig(token, path.join(work, "plain"), { admin: { tokenFile: writePrivate(path.join(work, "admin.token"), ADMIN_TOKEN) }, logLevel: "warn" }),
  ));
}, 180_000);

afterAll(async () => {
  await signer?.close();
  await plain?.close();
  token?.destroy();
});

/** Every listener, with a request that succeeds (200) when nothing is wrong with its Host or Origin. */
function endpoints(): { name: string; url: string; headers?: Record<string, string> }[] {
  return [
    { name: "main /upcheck", url: `${signer.url}/upcheck` },
    { name: "main eth2 publicKeys", url: `${signer.url}/api/v1/eth2/publicKeys`, headers: bearer(VC_TOKEN) },
    { name: "admin", url: `${signer.url}/admin/v1/fencing`, headers: bearer(ADMIN_TOKEN) },
    { name: "keymanager", url: `${signer.url}/eth/v1/keystores`, headers: bearer(KM_TOKEN) },
    { name: "metrics listener", url: `${signer.metricsUrl}/metrics` },
    { name: "client listener", url: `${signer.clientUrls.lodestar}/api/v1/eth2/publicKeys` },
    { name: "embedded-default main", url: `${plain.url}/api/v1/eth2/publicKeys` },
    { name: "embedded-default metrics", url: `${plain.url}/metrics` },
  ];
}

describe("Host allowlist (DNS rebinding)", () => {
  it("every listener refuses a foreign Host, even on its own port, and serves the default one", async () => {
    for (const e of endpoints()) {
      const refused = await raw(e.url, { headers: { ...e.headers, host: `${EVIL}:${port(e.url)}` } });
      expect(refused.status, e.name).toBe(403);
      expect(refused.json(), e.name).toMatchObject({ code: "HOST_NOT_ALLOWED" });
      const served = await raw(e.url, { headers: { ...e.headers } }); // Host: 127.0.0.1:port, as every client sends
      expect(served.status, e.name).toBe(200);
    }
  });

  it("the attack of the issue: a page re-resolved to 127.0.0.1 gets no exit, no key list, no poisoned history", async () => {
    const before = await auditTypes(plain);
    const host = { host: `${EVIL}:${port(plain.url)}` };
    expect((await raw(`${plain.url}/api/v1/eth2/sign/${pk(0)}`, { headers: host, body: JSON.stringify(exitBody()) })).status).toBe(403);
    expect((await raw(`${plain.url}/api/v1/eth2/publicKeys`, { headers: host })).status).toBe(403);
    const poison = attestationBody(0, 0);
    poison.attestation.target.epoch = "9223372036854775807";
    expect((await raw(`${plain.url}/api/v1/eth2/sign/${pk(0)}`, { headers: host, body: JSON.stringify(poison) })).status).toBe(403);
    // Nothing was signed or recorded: a real attestation still signs.
    expect((await fetchHttp(`${plain.url}/api/v1/eth2/sign/${pk(0)}`, { body: attestationBody(3, 4) })).status).toBe(200);
    expect((await auditTypes(plain)).filter((t: string) => !before.includes(t))).toEqual(["default:ATTESTATION"]);
  });

  it("a refused request is answered before its body is read or parsed", async () => {
    const res = await raw(`${signer.url}/api/v1/eth2/sign/${pk(0)}`, { headers: { ...bearer(VC_TOKEN), host: EVIL }, body: "{ not json" });
    expect(res.status).toBe(403);
    expect(res.json().code).toBe("HOST_NOT_ALLOWED");
    // Unknown routes too.
    expect((await raw(`${signer.url}/nowhere`, { headers: { host: EVIL } })).status).toBe(403);
  });

  it("matches names case-insensitively, with the listener's port; [::1]; configured names", async () => {
    const p = port(signer.url);
    const status = async (host: string) => (await raw(`${signer.url}/upcheck`, { headers: { host } })).status;
    expect(await status(`LOCALHOST:${p}`)).toBe(200);
    expect(await status(`localhost:${p}`)).toBe(200);
    expect(await status(`[::1]:${p}`)).toBe(200);
    expect(await status(`127.0.0.1:${p}`)).toBe(200);
    expect(await status(`localhost:${Number(p) === 65535 ? 1 : Number(p) + 1}`)).toBe(403); // another port
    expect(await status("localhost")).toBe(403); // port 80
    expect(await status(`localhost.:${p}`)).toBe(403);
    expect(await status(`127.0.0.2:${p}`)).toBe(403);
    expect(await status(`signer.internal:${p}`)).toBe(200); // configured without a port: any port
    expect(await status("SIGNER.INTERNAL")).toBe(200);
    expect(await status(`signer.internal.${EVIL}:${p}`)).toBe(403);
    expect(await status("proxy.example:8443")).toBe(200); // configured with a port: that one only
    expect(await status(`proxy.example:${p}`)).toBe(403);
    expect(await status(`user@localhost:${p}`)).toBe(403);
  });

  it("a request without Host (HTTP/1.0) is refused", async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port(signer.url)), "127.0.0.1", () => socket.write("GET /upcheck HTTP/1.0\r\n\r\n"));
      let data = "";
      socket.on("data", (d) => (data += d));
      socket.on("end", () => resolve(data));
      socket.on("error", reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.[01] 403/);
    expect(reply).toContain("HOST_NOT_ALLOWED");
  });

  it("refusals are counted in a metric", async () => {
    await raw(`${signer.url}/upcheck`, { headers: { host: EVIL } });
    const text = (await fetchHttp(`${signer.metricsUrl}/metrics`)).text;
    expect(text).toMatch(/vigil_signer_http_refusals_total\{listener="main",code="HOST_NOT_ALLOWED"\} [1-9]/);
  });
});

describe("Origin (cross-origin requests from a page)", () => {
  it("every listener refuses a request carrying a browser Origin or Sec-Fetch-Site: cross-site", async () => {
    for (const e of endpoints()) {
      const browserHeaders: Record<string, string>[] = [{ origin: `http://${EVIL}` }, { origin: "null" }, { "sec-fetch-site": "cross-site" }];
      for (const headers of browserHeaders) {
        const res = await raw(e.url, { headers: { ...e.headers, ...headers } });
        expect(res.status, `${e.name} ${JSON.stringify(headers)}`).toBe(403);
        expect(res.json().code).toBe("ORIGIN_NOT_ALLOWED");
      }
    }
  });

  it("a sign request from a page is refused and nothing is signed; no CORS header is ever sent", async () => {
    const res = await raw(`${signer.url}/api/v1/eth2/sign/${pk(1)}`, {
      headers: { ...bearer(VC_TOKEN), origin: "http://localhost:3000" },
      body: JSON.stringify(randaoBody(2)),
    });
    expect(res.status).toBe(403);
    const preflight = await raw(`${signer.url}/api/v1/eth2/sign/${pk(1)}`, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:3000", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(403);
    const ok = await fetchHttp(`${signer.url}/upcheck`);
    expect([...ok.headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual([]);
  });

  it("an explicitly allowed origin is let through", async () => {
    const config = parseSignerConfig({
      network: "minimal-devnet",
      hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
      http: { allowedOrigins: ["https://ops.example"] },
    });
    const guard = new HttpGuard(config.http, config.listen.host);
    expect(guard.check({ host: "127.0.0.1:9000", origin: "https://ops.example" }, 9000)).toBeUndefined();
    expect(guard.check({ host: "127.0.0.1:9000", origin: "https://ops.example.evil" }, 9000)?.code).toBe("ORIGIN_NOT_ALLOWED");
    // "*" in the host allowlist: any Host (documented as dangerous).
    expect(new HttpGuard({ hostAllowlist: ["*"], allowedOrigins: [] }, "0.0.0.0").check({ host: "anything:1" }, 9000)).toBeUndefined();
    // A wildcard listen address names no host: only the loopback names.
    const wild = new HttpGuard({ hostAllowlist: [], allowedOrigins: [] }, "0.0.0.0");
    expect(wild.check({ host: "0.0.0.0:9000" }, 9000)?.code).toBe("HOST_NOT_ALLOWED");
    expect(wild.check({ host: "127.0.0.1:9000" }, 9000)).toBeUndefined();
    // A specific listen address joins the defaults, with its port; IPv6 in brackets.
    expect(new HttpGuard({ hostAllowlist: [], allowedOrigins: [] }, "10.1.2.3").check({ host: "10.1.2.3:9000" }, 9000)).toBeUndefined();
    expect(new HttpGuard({ hostAllowlist: [], allowedOrigins: [] }, "fd00::5").check({ host: "[FD00::5]:9000" }, 9000)).toBeUndefined();
  });
});

describe("per-client request types", () => {
  it("a client without VOLUNTARY_EXIT (the default) is refused an exit and a deposit; nothing is signed", async () => {
    const before = await auditTypes(signer);
    for (const body of [exitBody(), depositBody()]) {
      const res = await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(0)}`, { body, headers: bearer(VC_TOKEN) });
      expect(res.status).toBe(403);
      expect(res.json()).toMatchObject({ code: "TYPE_NOT_ALLOWED" });
    }
    // The dedicated listener's client and the implicit default client have the same default.
    expect((await fetchHttp(`${signer.clientUrls.lodestar}/api/v1/eth2/sign/${pk(0)}`, { body: exitBody() })).json().code).toBe("TYPE_NOT_ALLOWED");
    expect((await fetchHttp(`${plain.url}/api/v1/eth2/sign/${pk(0)}`, { body: exitBody() })).json().code).toBe("TYPE_NOT_ALLOWED");
    expect(await auditTypes(signer)).toEqual(before);
    // Its duties still sign.
    expect((await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(0)}`, { body: randaoBody(1), headers: bearer(VC_TOKEN) })).status).toBe(200);
  });

  it("a client allowed every type signs an exit", async () => {
    const res = await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(0)}`, { body: exitBody(), headers: bearer(EXITER_TOKEN) });
    expect(res.status).toBe(200);
    expect(await auditTypes(signer)).toContain("exiter:VOLUNTARY_EXIT");
  });

  it("config: allowedTypes names a type; defaultClient applies only without clients", () => {
    const base = { network: "minimal-devnet", hsm: { module: "/x.so", tokenLabel: "t", pin: { env: "P" } } };
    expect(() => parseSignerConfig({ ...base, clients: [{ id: "a", tokenFile: "/t", keys: "*", allowedTypes: ["EXIT"] }] })).toThrow(
      /clients\[0\]\.allowedTypes\[0\] must be one of/,
    );
    expect(() => parseSignerConfig({ ...base, clients: [], defaultClient: { allowedTypes: "*" } })).toThrow(/defaultClient applies only without clients/);
    expect(parseSignerConfig({ ...base, defaultClient: { allowedTypes: "*" } }).defaultClient.allowedTypes).toBe("*");
    expect(parseSignerConfig(base).defaultClient.allowedTypes).not.toContain("VOLUNTARY_EXIT");
    expect(() => parseSignerConfig({ ...base, http: { hostAllowlist: ["evil.example/path"] } })).toThrow(
      /http\.hostAllowlist\[0\] "evil\.example\/path" is not a host name/,
    );
    expect(() => parseSignerConfig({ ...base, http: { allowedOrigins: ["evil.example"] } })).toThrow(/http\.allowedOrigins\[0\]/);
    expect(() => parseSignerConfig({ ...base, clients: [{ id: "a", listen: { port: 1, tls: true }, keys: "*" }] })).toThrow(
      /clients\[0\]\.listen\.tls is true but there is no top-level tls/,
    );
  });
});

describe("slashable messages far ahead of the wall clock", () => {
  it("an attestation with target 2^63-1 is refused and records nothing: later real attestations still sign", async () => {
    const poison = attestationBody(0, 0);
    poison.attestation.target.epoch = "9223372036854775807";
    const res = await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(1)}`, { body: poison, headers: bearer(VC_TOKEN) });
    expect(res.status).toBe(412);
    expect(res.json()).toMatchObject({ code: "EPOCH_TOO_FAR_AHEAD", reason: "EPOCH_TOO_FAR_AHEAD" });
    // Had (0, 2^63-1) been recorded, this one would be a surrounded vote.
    const real = await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(1)}`, {
      body: attestationBody(CURRENT_EPOCH - 1, CURRENT_EPOCH),
      headers: bearer(VC_TOKEN),
    });
    expect(real.status).toBe(200);
  });

  it("the margin: target up to the wall clock's epoch + 2 signs, one more is refused; the source too", async () => {
    const sign = (s: number, t: number) => fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(2)}`, { body: attestationBody(s, t), headers: bearer(VC_TOKEN) });
    expect((await sign(CURRENT_EPOCH + 2, CURRENT_EPOCH + 3)).json().code).toBe("EPOCH_TOO_FAR_AHEAD");
    expect((await sign(CURRENT_EPOCH + 3, CURRENT_EPOCH + 3)).json().code).toBe("EPOCH_TOO_FAR_AHEAD");
    expect((await sign(CURRENT_EPOCH + 1, CURRENT_EPOCH + 2)).status).toBe(200);
  });

  it("a block far ahead is refused and records nothing; a block at the current slot signs", async () => {
    const far = await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(1)}`, { body: blockBody(Number.MAX_SAFE_INTEGER), headers: bearer(VC_TOKEN) });
    expect(far.status).toBe(412);
    expect(far.json().code).toBe("SLOT_TOO_FAR_AHEAD");
    const lastAllowed = (CURRENT_EPOCH + 3) * SLOTS_PER_EPOCH - 1;
    expect((await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(1)}`, { body: blockBody(lastAllowed + 1), headers: bearer(VC_TOKEN) })).status).toBe(412);
    expect(
      (await fetchHttp(`${signer.url}/api/v1/eth2/sign/${pk(1)}`, { body: blockBody(CURRENT_EPOCH * SLOTS_PER_EPOCH + 4), headers: bearer(VC_TOKEN) })).status,
    ).toBe(200);
    const text = (await fetchHttp(`${signer.metricsUrl}/metrics`)).text;
    expect(text).toMatch(/vigil_signer_slashing_refusals_total\{reason="SLOT_TOO_FAR_AHEAD"\} [1-9]/);
  });

  it("the wall clock: mainnet's genesis is built in; before genesis the clock reads epoch 0", () => {
    const mainnet = parseSignerConfig({ network: "mainnet", hsm: { module: "/x.so", tokenLabel: "t", pin: { env: "P" } } }).network;
    expect(mainnet.genesisTime).toBe(1606824023);
    const at = (ms: number) => new WallClockGuard({ genesisTime: mainnet.genesisTime!, secondsPerSlot: 12, slotsPerEpoch: 32, maxEpochsAhead: 2 }, () => ms);
    // 2024-01-01T00:00:00Z is mainnet slot 8,103,598, epoch 253,237.
    expect(at(Date.UTC(2024, 0, 1)).currentEpoch()).toBe(253_237n);
    expect(at(0).currentEpoch()).toBe(0n);
    const request = validateSignRequest(attestationBody(253_238, 253_239));
    expect(() => at(Date.UTC(2024, 0, 1)).check(request)).not.toThrow();
    expect(() => at(Date.UTC(2023, 11, 31)).check(request)).toThrow(/beyond epoch/);
  });
});

describe("TLS on a dedicated client listener", () => {
  it("serves its client over HTTPS, with the Host guard; plain HTTP gets nothing", async () => {
    const url = signer.clientUrls.secure!;
    expect(url.startsWith("https://")).toBe(true);
    const ca = fs.readFileSync(path.join(tlsDir, "server.crt"));
    const keys = await raw(`${url}/api/v1/eth2/publicKeys`, { ca });
    expect(keys.status).toBe(200);
    expect(keys.json()).toEqual([pk(3)]);
    expect((await raw(`${url}/api/v1/eth2/sign/${pk(3)}`, { ca, body: JSON.stringify(randaoBody(4)) })).status).toBe(200);
    expect((await raw(`${url}/upcheck`, { ca, headers: { host: `${EVIL}:${port(url)}` } })).status).toBe(403);
    const plainHttp = url.replace("https://", "http://");
    await expect(raw(`${plainHttp}/api/v1/eth2/sign/${pk(3)}`, { body: JSON.stringify(randaoBody(5)) })).rejects.toThrow();
  });
});
