// The keymanager API (GET/POST/DELETE /eth/v1/keystores) with slashing protection moving with the keys:
// delete on one signer exports the history, import on another signer brings it in before the key can sign.
import crypto from "node:crypto";
import path from "node:path";
import { create } from "@chainsafe/bls-keystore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openKeyStore } from "../../signer/keystore/index.js";
import type { RunningSigner } from "../../signer/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { attestationBody, http, interopPubkey, start, testConfig, tokenWithInteropKeys, writePrivate } from "./harness.js";

const work = tempDir("vigil-signer-km-");
const pk = (i: number) => interopPubkey(i);
const KM_TOKEN = "keymanager-token-0123456789";
let tokenA: TestToken;
let tokenB: TestToken;
let a: RunningSigner;
let b: RunningSigner;
let exported: string;

const km = (signer: RunningSigner, method: string, body?: unknown, auth = `Bearer ${KM_TOKEN}`) =>
  http(`${signer.url}/eth/v1/keystores`, { method, ...(body === undefined ? {} : { body }), headers: { authorization: auth } });

async function keystoreJson(i: number, password: string): Promise<string> {
  const kdf = { function: "pbkdf2" as const, params: { dklen: 32, c: 2, prf: "hmac-sha256" as const, salt: crypto.randomBytes(32).toString("hex") } };
  return JSON.stringify(await create(password, interopSecretKey(i), Buffer.from(pk(i).slice(2), "hex"), `m/12381/3600/${i}/0/0`, "", kdf));
}

beforeAll(async () => {
  tokenA = await tokenWithInteropKeys("vigil-test-signer-km-a", 2);
  tokenB = await tokenWithInteropKeys("vigil-test-signer-km-b", 0);
  const tokenFile = writePrivate(path.join(work, "km.token"), KM_TOKEN);
  ({ signer: a } = await start(testConfig(tokenA, path.join(work, "a"), { keymanager: { enabled: true, tokenFile }, logLevel: "warn" })));
  ({ signer: b } = await start(testConfig(tokenB, path.join(work, "b"), { keymanager: { enabled: true, tokenFile }, logLevel: "warn" })));
}, 120_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  tokenA?.destroy();
  tokenB?.destroy();
});

describe("keymanager API", () => {
  it("needs the bearer token (401 without, 403 wrong)", async () => {
    expect((await http(`${a.url}/eth/v1/keystores`)).status).toBe(401);
    expect((await km(a, "GET", undefined, "Bearer wrong-token-wrong-token")).status).toBe(403);
  });

  it("lists the loaded keys", async () => {
    const res = await km(a, "GET");
    expect(res.status).toBe(200);
    expect(res.json().data).toEqual([pk(0), pk(1)].sort().map((p) => ({ validating_pubkey: p, derivation_path: "", readonly: false })));
  });

  it("delete: stops the key, removes it from the token, exports its history", async () => {
    expect((await http(`${a.url}/api/v1/eth2/sign/${pk(0)}`, { body: attestationBody(3, 4) })).status).toBe(200);
    const res = await km(a, "DELETE", { pubkeys: [pk(0), pk(7)] });
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body.data).toEqual([{ status: "deleted" }, { status: "not_found" }]);
    const interchange = JSON.parse(body.slashing_protection);
    expect(interchange.metadata.interchange_format_version).toBe("5");
    expect(interchange.data).toHaveLength(1);
    expect(interchange.data[0].pubkey).toBe(pk(0));
    expect(interchange.data[0].signed_attestations).toEqual([expect.objectContaining({ source_epoch: "3", target_epoch: "4" })]);
    exported = body.slashing_protection;

    expect((await http(`${a.url}/api/v1/eth2/sign/${pk(0)}`, { body: attestationBody(5, 6) })).status).toBe(404);
    expect((await km(a, "GET")).json().data.map((k: { validating_pubkey: string }) => k.validating_pubkey)).toEqual([pk(1)]);
    // A second delete: the key is gone but its history is still here.
    const again = (await km(a, "DELETE", { pubkeys: [pk(0)] })).json();
    expect(again.data).toEqual([{ status: "not_active" }]);
    expect(JSON.parse(again.slashing_protection).data[0].pubkey).toBe(pk(0));
  });

  it("the key is gone from the HSM token too", async () => {
    await a.close();
    const store = openKeyStore(tokenA.config);
    try {
      expect((await store.list()).map((k) => k.pubkey)).toEqual([pk(1)]);
    } finally {
      await store.close();
    }
    ({ signer: a } = await start(
      testConfig(tokenA, path.join(work, "a"), { keymanager: { enabled: true, tokenFile: path.join(work, "km.token") }, logLevel: "warn" }),
    ));
  });

  it("import on another signer: history first, then the key; conflicting messages stay refused", async () => {
    const password = "correct horse battery staple";
    const res = await km(b, "POST", { keystores: [await keystoreJson(0, password)], passwords: [password], slashing_protection: exported });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ data: [{ status: "imported" }] });
    // The keystore's `path` is kept as derivation_path, as Web3Signer lists it.
    expect((await km(b, "GET")).json().data).toEqual([{ validating_pubkey: pk(0), derivation_path: "m/12381/3600/0/0/0", readonly: false }]);
    // The exported history pinned B's database to the same network and protects the key there.
    const conflicting = await http(`${b.url}/api/v1/eth2/sign/${pk(0)}`, { body: attestationBody(3, 4, { blockRoot: `0x${"77".repeat(32)}` }) });
    expect(conflicting.status).toBe(412);
    expect(conflicting.json().reason).toBe("DOUBLE_VOTE");
    expect((await http(`${b.url}/api/v1/eth2/sign/${pk(0)}`, { body: attestationBody(4, 5) })).status).toBe(200);
  });

  it("duplicates, wrong passwords and malformed keystores get per-keystore statuses", async () => {
    const res = await km(b, "POST", {
      keystores: [await keystoreJson(0, "pw-0-pw-0"), await keystoreJson(1, "pw-1-pw-1"), "{not a keystore"],
      passwords: ["pw-0-pw-0", "wrong password", "x"],
    });
    expect(res.status).toBe(200);
    const data = res.json().data;
    expect(data[0]).toEqual({ status: "duplicate" });
    expect(data[1].status).toBe("error");
    expect(data[2].status).toBe("error");
    expect((await km(b, "POST", { keystores: ["x"], passwords: [] })).status).toBe(400);
    expect((await km(b, "POST", { keystores: [await keystoreJson(1, "p")], passwords: ["p"], slashing_protection: "{}" })).status).toBe(400);
  });

  it("the key store keeps the imported key across a restart", async () => {
    await b.close();
    ({ signer: b } = await start(
      testConfig(tokenB, path.join(work, "b"), { keymanager: { enabled: true, tokenFile: path.join(work, "km.token") }, logLevel: "warn" }),
    ));
    expect(b.publicKeys).toEqual([pk(0)]);
  });

  it("delete: a pubkey without 0x, in any case, is the same key; the reply names it in canonical form", async () => {
    expect((await km(b, "DELETE", { pubkeys: [`0x${"ab".repeat(47)}`] })).status).toBe(400);
    expect((await km(b, "DELETE", { pubkeys: [`0x${"zz".repeat(48)}`] })).status).toBe(400);
    const res = await km(b, "DELETE", { pubkeys: [pk(0).slice(2).toUpperCase()] });
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body.data).toEqual([{ status: "deleted" }]);
    expect(JSON.parse(body.slashing_protection).data.map((d: { pubkey: string }) => d.pubkey)).toEqual([pk(0)]);
    expect((await km(b, "GET")).json().data).toEqual([]);
    expect((await http(`${b.url}/api/v1/eth2/sign/${pk(0)}`, { body: attestationBody(6, 7) })).status).toBe(404);
  });

  it("is off unless enabled", async () => {
    const { signer } = await start(testConfig(tokenA, path.join(work, "off"), { logLevel: "warn" }));
    try {
      expect((await km(signer, "GET")).status).toBe(404);
    } finally {
      await signer.close();
    }
  });
});
