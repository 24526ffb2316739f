// The eth2 HTTP API against a real SoftHSM2 token, SQLite file and loopback listener: replies, error paths,
// slashing refusals, the one-network rule, metrics and the log.
import fs from "node:fs";
import path from "node:path";
import bls from "@chainsafe/bls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesToHex, hexToBytes } from "../../common/index.js";
import type { RunningSigner } from "../../signer/index.js";
import { computeSigningRoot, MINIMAL_DEVNET, validateSignRequest } from "../../signer/signing/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { attestationBody, blockBody, GVR, http, interopPubkey, type LogCapture, randaoBody, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const KEYS = 8;
const work = tempDir("vigil-signer-http-");
let token: TestToken;
let signer: RunningSigner;
let log: LogCapture;
const pk = (i: number) => interopPubkey(i);
const signUrl = (i: number | string) => `${signer.url}/api/v1/eth2/sign/${typeof i === "number" ? pk(i) : i}`;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-http", KEYS);
  ({ signer, log } = await start(testConfig(token, path.join(work, "main"), { limits: { bodyLimitBytes: 4096 } })));
}, 120_000);

afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

describe("health and keys", () => {
  it("GET /upcheck answers OK", async () => {
    const res = await http(`${signer.url}/upcheck`);
    expect(res.status).toBe(200);
    expect(res.text).toBe("OK");
  });

  it("GET /healthcheck reports the slashing database, the audit feed, the key store and the BLS workers, with Web3Signer's ids", async () => {
    const res = await http(`${signer.url}/healthcheck`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      status: "UP",
      checks: [
        { id: "default-check", status: "UP" },
        { id: "slashing-protection-db-health-check", status: "UP" },
        { id: "audit-log", status: "UP" },
        {
          id: "keys-check",
          status: "UP",
          checks: [{ id: "keys-check/pkcs11-token-loading", status: "UP", data: { "keys-loaded": KEYS, "error-count": 0 } }],
        },
        { id: "bls-workers", status: "UP" },
      ],
      outcome: "UP",
    });
  });

  it("GET /api/v1/eth2/publicKeys lists the token's keys", async () => {
    const keys = (await http(`${signer.url}/api/v1/eth2/publicKeys`)).json() as string[];
    expect(keys.sort()).toEqual(Array.from({ length: KEYS }, (_, i) => pk(i)).sort());
  });
});

describe("signing replies", () => {
  it("JSON when Accept is absent, */* or JSON; plain hex for text/plain; 406 otherwise", async () => {
    const body = randaoBody(1);
    const request = validateSignRequest(structuredClone(body));
    const expected = bytesToHex(bls.SecretKey.fromBytes(interopSecretKey(0)).sign(computeSigningRoot(request, MINIMAL_DEVNET).signingRoot).toBytes());
    for (const accept of [undefined, "*/*", "application/json", "application/json;q=0.9, text/plain;q=0.5"]) {
      const res = await http(signUrl(0), { body, headers: accept ? { accept } : {} });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(res.json()).toEqual({ signature: expected });
    }
    const text = await http(signUrl(0), { body, headers: { accept: "text/plain" } });
    expect(text.status).toBe(200);
    expect(text.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(text.text).toBe(expected);
    expect((await http(signUrl(0), { body, headers: { accept: "image/png" } })).status).toBe(406);
  });

  it("upper-case public keys in the path are the same key", async () => {
    const res = await http(`${signer.url}/api/v1/eth2/sign/0x${pk(1).slice(2).toUpperCase()}`, { body: randaoBody(2) });
    expect(res.status).toBe(200);
  });
});

describe("malformed requests: 400 naming the field", () => {
  it("a missing field", async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the test breaks the body's shape on purpose
    const body = attestationBody(0, 1) as Record<string, any>;
    delete body.attestation.target;
    const res = await http(signUrl(0), { body });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: "INVALID_REQUEST", field: "attestation.target" });
  });

  it("a wrong value", async () => {
    // biome-ignore lint/suspicious/noExplicitAny: the test breaks the body's shape on purpose
    const body = attestationBody(0, 1) as Record<string, any>;
    body.attestation.source.epoch = "-1";
    const res = await http(signUrl(0), { body });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: "INVALID_REQUEST", field: "attestation.source.epoch" });
  });

  it("an unknown type", async () => {
    const res = await http(signUrl(0), { body: { type: "NOPE" } });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ field: "type" });
  });

  it("a signingRoot that differs from the computed one", async () => {
    const res = await http(signUrl(0), { body: { ...randaoBody(3), signingRoot: `0x${"00".repeat(32)}` } });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ code: "SIGNING_ROOT_MISMATCH", field: "signingRoot" });
  });

  it("a matching signingRoot (either name) is accepted", async () => {
    const body = randaoBody(4);
    const root = bytesToHex(computeSigningRoot(validateSignRequest(structuredClone(body)), MINIMAL_DEVNET).signingRoot);
    expect((await http(signUrl(0), { body: { ...body, signingRoot: root } })).status).toBe(200);
    expect((await http(signUrl(0), { body: { ...body, signing_root: root.toUpperCase().replace("0X", "0x") } })).status).toBe(200);
  });

  it("invalid JSON, a body over the limit, a malformed identifier", async () => {
    const bad = await http(signUrl(0), { rawBody: "{not json" });
    expect(bad.status).toBe(400);
    expect(bad.json().code).toBe("INVALID_JSON");
    const big = await http(signUrl(0), { body: { ...randaoBody(5), padding: "x".repeat(5000) } });
    expect(big.status).toBe(413);
    expect(big.json()).toEqual({ code: "BODY_TOO_LARGE", message: "request body is larger than the limit" });
    const id = await http(signUrl("0x1234"), { body: randaoBody(5) });
    expect(id.status).toBe(400);
    expect(id.json().field).toBe("identifier");
  });
});

describe("unknown keys: 404", () => {
  it("a well-formed key the signer does not hold", async () => {
    const res = await http(signUrl(pk(KEYS + 1)), { body: randaoBody(1) });
    expect(res.status).toBe(404);
    expect(res.json().code).toBe("UNKNOWN_PUBKEY");
  });
});

describe("slashing protection: 412 with the reason", () => {
  it("a second, different block at the same slot is refused; the same block again is signed", async () => {
    const first = await http(signUrl(2), { body: blockBody(100) });
    expect(first.status).toBe(200);
    const again = await http(signUrl(2), { body: blockBody(100) });
    expect(again.status).toBe(200);
    expect(again.json()).toEqual(first.json());
    const other = await http(signUrl(2), { body: blockBody(100, { bodyRoot: `0x${"99".repeat(32)}` }) });
    expect(other.status).toBe(412);
    expect(other.json()).toMatchObject({ code: "DOUBLE_BLOCK_PROPOSAL", reason: "DOUBLE_BLOCK_PROPOSAL" });
  });

  it("surrounding votes are refused", async () => {
    expect((await http(signUrl(3), { body: attestationBody(2, 3) })).status).toBe(200);
    expect((await http(signUrl(3), { body: attestationBody(5, 6) })).status).toBe(200);
    const res = await http(signUrl(3), { body: attestationBody(4, 7) });
    expect(res.status).toBe(412);
    expect(res.json().reason).toBe("SURROUNDING_VOTE");
  });

  it("of 20 concurrent conflicting attestations exactly one is signed", async () => {
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => http(signUrl(4), { body: attestationBody(1, 2, { blockRoot: `0x${i.toString(16).padStart(64, "0")}` }) })),
    );
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(19);
    for (const r of replies.filter((r) => r.status === 412)) expect(r.json().reason).toBe("DOUBLE_VOTE");
  });

  it("one network per signer: another genesis_validators_root is refused (412), for every type", async () => {
    const other = `0x${"cd".repeat(32)}`;
    for (const body of [attestationBody(10, 11, { gvr: other }), randaoBody(9, other), blockBody(500, { gvr: other })]) {
      const res = await http(signUrl(5), { body });
      expect(res.status).toBe(412);
      expect(res.json().code).toBe("GENESIS_VALIDATORS_ROOT_MISMATCH");
    }
    expect((await http(signUrl(5), { body: attestationBody(10, 11, { gvr: GVR }) })).status).toBe(200);
  });
});

describe("overload: 503 with Retry-After", () => {
  it("requests beyond limits.maxQueueDepth are refused, the rest signed", async () => {
    const { signer: small } = await start(testConfig(token, path.join(work, "small"), { limits: { maxQueueDepth: 1 }, logLevel: "warn" }));
    try {
      // Bursts until one overlaps enough (arrival timing is the OS's business; one burst nearly always does).
      let replies: Awaited<ReturnType<typeof http>>[] = [];
      for (let attempt = 0; attempt < 5 && !replies.some((r) => r.status === 503); attempt++) {
        replies = await Promise.all(
          Array.from({ length: 100 }, (_, i) => http(`${small.url}/api/v1/eth2/sign/${pk(i % KEYS)}`, { body: randaoBody(100 + i) })),
        );
      }
      const busy = replies.filter((r) => r.status === 503);
      expect(busy.length).toBeGreaterThan(0);
      expect(replies.filter((r) => r.status === 200).length).toBeGreaterThan(0);
      expect(replies.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      for (const r of busy) {
        expect(r.headers.get("retry-after")).toBe("1");
        expect(r.json().code).toBe("QUEUE_FULL");
      }
    } finally {
      await small.close();
    }
  });
});

describe("without clients in the config", () => {
  it('every request is the implicit client "default", which the admin API can fence', async () => {
    const adminToken = "admin-token-for-default-client";
    const tokenFile = path.join(work, "admin.token");
    fs.writeFileSync(tokenFile, adminToken, { mode: 0o600 });
    const { signer: s } = await start(testConfig(token, path.join(work, "default"), { admin: { tokenFile }, logLevel: "warn" }));
    try {
      const admin = (p: string, body?: unknown) =>
        http(`${s.url}/admin/v1${p}`, { ...(body ? { body } : {}), headers: { authorization: `Bearer ${adminToken}` } });
      expect((await http(`${s.url}/api/v1/eth2/sign/${pk(0)}`, { body: randaoBody(1) })).status).toBe(200);
      expect((await admin("/clients")).json().clients.map((c: { id: string }) => c.id)).toEqual(["default"]);
      expect((await admin("/clients/default/disable", { generation: 1 })).status).toBe(200);
      const refused = await http(`${s.url}/api/v1/eth2/sign/${pk(0)}`, { body: randaoBody(2) });
      expect(refused.status).toBe(403);
      expect(refused.json().code).toBe("CLIENT_DISABLED");
    } finally {
      await s.close();
    }
  });
});

describe("metrics and logs", () => {
  it("GET /metrics exposes the signer's series", async () => {
    const res = await http(`${signer.url}/metrics`);
    expect(res.status).toBe(200);
    for (const series of [
      'vigil_signer_requests_total{type="ATTESTATION",outcome="signed"}',
      'vigil_signer_requests_total{type="BLOCK_V2",outcome="refused"}',
      "vigil_signer_request_duration_seconds_bucket",
      'vigil_signer_slashing_refusals_total{reason="DOUBLE_VOTE"}',
      'vigil_signer_slashing_refusals_total{reason="GENESIS_VALIDATORS_ROOT_MISMATCH"}',
      'vigil_signer_queue_depth{stage="total"}',
      "vigil_slashing_db_commit_batch_size_bucket",
      "vigil_slashing_db_commit_duration_seconds_bucket",
      `vigil_signer_keys_loaded ${KEYS}`,
      "vigil_signer_fencing_generation",
      "process_cpu_seconds_total",
      "nodejs_eventloop_lag_seconds",
    ]) {
      expect(res.text, series).toContain(series);
    }
  });

  it("the log is pino JSON with request ids and never holds key material or the PIN", async () => {
    const lines = log.lines();
    const refusals = lines.filter((l) => l.code === "DOUBLE_VOTE");
    expect(refusals.length).toBeGreaterThan(0);
    for (const l of refusals) expect(typeof l.reqId).toBe("string");
    const text = log.text.toLowerCase();
    for (let i = 0; i < KEYS; i++) {
      const sk = Buffer.from(interopSecretKey(i));
      expect(text).not.toContain(sk.toString("hex"));
      expect(text).not.toContain(sk.toString("base64").toLowerCase());
    }
    expect(text).not.toContain(token.pin.toLowerCase());
  });

  it("signatures verify against the key and the computed root (sanity of the whole path)", async () => {
    const body = attestationBody(20, 21);
    const res = await http(signUrl(6), { body });
    const root = computeSigningRoot(validateSignRequest(structuredClone(body)), MINIMAL_DEVNET).signingRoot;
    expect(bls.verify(hexToBytes(pk(6)), root, hexToBytes(res.json().signature))).toBe(true);
  });
});
