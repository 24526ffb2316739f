// Web3Signer wire details a client or probe written for it relies on: identifiers and hex fields without 0x,
// 413 for an oversized body, the healthcheck's check ids, and one error shape on every route, unknown ones included.
// Real token, database and loopback listener.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesToHex } from "../../common/index.js";
import type { RunningSigner } from "../../signer/index.js";
import { computeSigningRoot, MINIMAL_DEVNET, validateSignRequest } from "../../signer/signing/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, GVR, http, interopPubkey, randaoBody, start, testConfig, tokenWithInteropKeys, writePrivate } from "./harness.js";

const work = tempDir("vigil-signer-wire-");
const KEYMANAGER_TOKEN = "wire-compat-keymanager-token-0123456789";
let token: TestToken;
let signer: RunningSigner;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-wire", 3);
  const config = testConfig(token, path.join(work, "main"), {
    genesisValidatorsRoot: GVR,
    logLevel: "warn",
    limits: { bodyLimitBytes: 8192 },
    keymanager: { enabled: true, tokenFile: writePrivate(path.join(work, "km.token"), KEYMANAGER_TOKEN) },
  });
  ({ signer } = await start(config));
}, 120_000);

afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

const signUrl = (id: string) => `${signer.url}/api/v1/eth2/sign/${id}`;
/** Every string of `body` that is 0x-hex, without its 0x. */
function stripped<T>(body: T): T {
  return JSON.parse(JSON.stringify(body), (_k, v) => (typeof v === "string" && /^0x[0-9a-fA-F]+$/.test(v) ? v.slice(2) : v));
}

describe("identifiers and hex fields without 0x", () => {
  it("a public key without 0x in the path signs as with it", async () => {
    const withPrefix = await http(signUrl(interopPubkey(0)), { body: randaoBody(3) });
    const without = await http(signUrl(interopPubkey(0).slice(2)), { body: randaoBody(3) });
    expect(withPrefix.status).toBe(200);
    expect(without.status, without.text).toBe(200);
    expect(without.json()).toEqual(withPrefix.json());
    const upper = await http(signUrl(interopPubkey(0).slice(2).toUpperCase()), { body: randaoBody(3) });
    expect(upper.json()).toEqual(withPrefix.json());
  });

  it("fork versions, roots and signingRoot without 0x sign the same message, and slashing protection sees the same one", async () => {
    const plain = attestationBody(1, 2);
    const body = { ...plain, signingRoot: bytesToHex(computeSigningRoot(validateSignRequest(structuredClone(plain)), MINIMAL_DEVNET).signingRoot) };
    const first = await http(signUrl(interopPubkey(1)), { body });
    expect(first.status, first.text).toBe(200);
    // The same attestation without any 0x: an exact repeat (same signing root), so the same signature, not a double vote.
    const repeat = await http(signUrl(interopPubkey(1)), { body: stripped(body) });
    expect(repeat.status, repeat.text).toBe(200);
    expect(repeat.json()).toEqual(first.json());
    // A different block root without 0x is a different attestation for the same target: refused as a double vote.
    const other = stripped(attestationBody(1, 2, { blockRoot: `0x${"99".repeat(32)}` }));
    expect((await http(signUrl(interopPubkey(1)), { body: other })).status).toBe(412);
  });

  it("still refuses what is not hex, naming the field", async () => {
    const bad = await http(signUrl(interopPubkey(0)), {
      body: { ...randaoBody(4), fork_info: { ...randaoBody(4).fork_info, genesis_validators_root: "zz".repeat(32) } },
    });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ code: "INVALID_REQUEST", field: "fork_info.genesis_validators_root" });
    const id = await http(signUrl(`0x${"zz".repeat(48)}`), { body: randaoBody(4) });
    expect(id.status).toBe(400);
    expect(id.json()).toMatchObject({ code: "INVALID_REQUEST", field: "identifier" });
  });
});

describe("413 and one error shape", () => {
  /** `{ code, message }`, both non-empty strings: the shape of every refusal. */
  function expectErrorShape(reply: { status: number; json: () => Record<string, unknown>; headers: Headers }, status: number, code: string) {
    expect(reply.status).toBe(status);
    expect(reply.headers.get("content-type")).toMatch(/^application\/json/);
    const body = reply.json();
    expect(body.code).toBe(code);
    expect(typeof body.message).toBe("string");
    expect(body.message).not.toBe("");
    expect(body).not.toHaveProperty("statusCode"); // fastify's own shape
    expect(body).not.toHaveProperty("error");
  }

  it("a body over the limit gets 413 with a JSON body, on the sign route and elsewhere", async () => {
    const big = { ...randaoBody(5), padding: "x".repeat(9000) };
    expectErrorShape(await http(signUrl(interopPubkey(0)), { body: big }), 413, "BODY_TOO_LARGE");
    const keymanager = await http(`${signer.url}/eth/v1/keystores`, {
      body: { keystores: ["x".repeat(9000)], passwords: [""] },
      headers: { authorization: `Bearer ${KEYMANAGER_TOKEN}` },
    });
    expectErrorShape(keymanager, 413, "BODY_TOO_LARGE");
  });

  it("unknown routes and methods get 404 with the same shape", async () => {
    expectErrorShape(await http(`${signer.url}/no/such/route`), 404, "NOT_FOUND");
    expectErrorShape(await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(0)}`, { method: "GET" }), 404, "NOT_FOUND");
    expectErrorShape(await http(`${signer.url}/eth/v1/no-such-keymanager-route`, { method: "DELETE" }), 404, "NOT_FOUND");
  });

  it("refusals of every kind carry code and message", async () => {
    expectErrorShape(await http(signUrl(interopPubkey(0)), { rawBody: "{not json" }), 400, "INVALID_JSON");
    expectErrorShape(await http(signUrl(`0x${"ab".repeat(48)}`), { body: randaoBody(6) }), 404, "UNKNOWN_PUBKEY");
    expectErrorShape(await http(signUrl(interopPubkey(0)), { rawBody: "x", headers: { "content-type": "application/xml" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
    expectErrorShape(await http(signUrl(interopPubkey(0)), { body: randaoBody(6), headers: { accept: "image/png" } }), 406, "NOT_ACCEPTABLE");
    expectErrorShape(await http(`${signer.url}/eth/v1/keystores`), 401, "UNAUTHENTICATED");
    const malformed = await http(`${signer.url}/eth/v1/keystores`, { body: { keystores: "no" }, headers: { authorization: `Bearer ${KEYMANAGER_TOKEN}` } });
    expectErrorShape(malformed, 400, "INVALID_REQUEST");
  });
});

describe("GET /healthcheck with Web3Signer's check ids", () => {
  it("default-check, slashing-protection-db-health-check and keys-check with data.keys-loaded", async () => {
    const res = await http(`${signer.url}/healthcheck`);
    expect(res.status).toBe(200);
    const body = res.json() as {
      status: string;
      outcome: string;
      checks: { id: string; status: string; checks?: { id: string; data?: Record<string, number> }[] }[];
    };
    expect(body.status).toBe("UP");
    expect(body.outcome).toBe("UP");
    const ids = body.checks.map((c) => c.id);
    expect(ids).toEqual(expect.arrayContaining(["default-check", "slashing-protection-db-health-check", "keys-check"]));
    const keys = body.checks.find((c) => c.id === "keys-check")!;
    expect(keys.checks).toHaveLength(1);
    expect(keys.checks![0]!.id).toMatch(/^keys-check\//);
    expect(keys.checks![0]!.data).toEqual({ "keys-loaded": 3, "error-count": 0 });
  });
});
