// Client identities (bearer token, dedicated listener, TLS client certificate), per-client key lists, and
// the admin fencing contract of signer/docs/admin-api.md: generations, durable disable, inFlight/lastSigned,
// and the signatures audit feed.
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSigner, SignerConfig } from "../../signer/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { certificateSha256, selfSignedCertificate } from "../helpers/tls.js";
import { attestationBody, http, interopPubkey, randaoBody, start, testConfig, tokenWithInteropKeys, writePrivate } from "./harness.js";

const KEYS = 4;
const work = tempDir("vigil-signer-clients-");
const pk = (i: number) => interopPubkey(i);
const PRIMARY_TOKEN = "primary-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const STANDBY_TOKEN = "standby-token-0123456789abcdef";
let token: TestToken;
let config: SignerConfig;
let signer: RunningSigner;
const released: string[] = []; // every signature any client received

const admin = (p: string, body?: unknown) =>
  http(`${signer.url}/admin/v1${p}`, { ...(body === undefined ? {} : { body }), headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
const primarySign = async (i: number, body: unknown) => {
  const res = await http(`${signer.url}/api/v1/eth2/sign/${pk(i)}`, { body, headers: { authorization: `Bearer ${PRIMARY_TOKEN}` } });
  if (res.status === 200) released.push(res.json().signature);
  return res;
};
const backupSign = async (i: number, body: unknown) => {
  const res = await http(`${signer.clientUrls.backup}/api/v1/eth2/sign/${pk(i)}`, { body });
  if (res.status === 200) released.push(res.json().signature);
  return res;
};

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-clients", KEYS);
  const dir = path.join(work, "signer");
  config = testConfig(token, dir, {
    clients: [
      { id: "primary", tokenFile: writePrivate(path.join(work, "primary.token"), `${PRIMARY_TOKEN}\n`), keys: "*" },
      { id: "backup", listen: { host: "127.0.0.1", port: 0 }, keys: [pk(0), pk(1)] },
      { id: "standby", tokenFile: writePrivate(path.join(work, "standby.token"), `${STANDBY_TOKEN}\n`), keys: "*", initiallyEnabled: false },
    ],
    admin: { tokenFile: writePrivate(path.join(work, "admin.token"), ADMIN_TOKEN) },
    metrics: { host: "127.0.0.1", port: 0 },
    logLevel: "warn",
  });
  ({ signer } = await start(config));
}, 120_000);

afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

describe("client identities", () => {
  it("a request that matches no client is refused with 401; a wrong token too", async () => {
    expect((await http(`${signer.url}/api/v1/eth2/sign/${pk(0)}`, { body: randaoBody(1) })).status).toBe(401);
    expect((await http(`${signer.url}/api/v1/eth2/publicKeys`)).status).toBe(401);
    const wrong = await http(`${signer.url}/api/v1/eth2/sign/${pk(0)}`, { body: randaoBody(1), headers: { authorization: "Bearer nope-nope-nope-nope" } });
    expect(wrong.status).toBe(401);
    expect(wrong.json().code).toBe("UNAUTHENTICATED");
  });

  it("a bearer token identifies its client", async () => {
    expect((await primarySign(2, randaoBody(1))).status).toBe(200);
  });

  it("a dedicated listener identifies its client without credentials, and lists only its keys", async () => {
    expect((await backupSign(0, randaoBody(1))).status).toBe(200);
    const keys = (await http(`${signer.clientUrls.backup}/api/v1/eth2/publicKeys`)).json();
    expect(keys.sort()).toEqual([pk(0), pk(1)].sort());
  });

  it("a client configured initiallyEnabled: false is refused until an activate call enables it", async () => {
    const standbySign = () => http(`${signer.url}/api/v1/eth2/sign/${pk(3)}`, { body: randaoBody(5), headers: { authorization: `Bearer ${STANDBY_TOKEN}` } });
    const refused = await standbySign();
    expect(refused.status).toBe(403);
    expect(refused.json().code).toBe("CLIENT_DISABLED");
    expect((await admin("/clients/standby")).json().enabled).toBe(false);
    const generation = (await admin("/fencing")).json().generation;
    expect((await admin("/clients/standby/enable", { generation })).status).toBe(200);
    const signed = await standbySign();
    expect(signed.status).toBe(200);
    released.push(signed.json().signature);
    // Leave it as the other tests expect: fenced again, with the same (still current) generation.
    expect((await admin("/clients/standby/disable", { generation })).status).toBe(200);
  });

  it("a key outside the client's list is refused with 403 KEY_NOT_ALLOWED", async () => {
    const res = await backupSign(2, randaoBody(1));
    expect(res.status).toBe(403);
    expect(res.json().code).toBe("KEY_NOT_ALLOWED");
  });

  it("metrics live on their own listener when metrics.port is set", async () => {
    expect(signer.metricsUrl).not.toBe(signer.url);
    expect((await http(`${signer.metricsUrl}/metrics`)).text).toContain("vigil_signer_requests_total");
    expect((await http(`${signer.url}/metrics`)).status).toBe(404);
  });
});

describe("admin API: fencing", () => {
  it("needs the admin token", async () => {
    expect((await http(`${signer.url}/admin/v1/fencing`)).status).toBe(401);
    expect((await http(`${signer.url}/admin/v1/fencing`, { headers: { authorization: `Bearer ${PRIMARY_TOKEN}` } })).status).toBe(401);
  });

  it("starts at generation 0 with every client enabled but the standby (initiallyEnabled: false)", async () => {
    expect((await admin("/fencing")).json()).toEqual({ generation: 0 });
    const view = (await admin("/clients")).json();
    expect(view.generation).toBe(0);
    expect(view.clients.map((c: { id: string; enabled: boolean }) => [c.id, c.enabled])).toEqual([
      ["primary", true],
      ["backup", true],
      ["standby", false],
    ]);
  });

  it("reports what each client signed", async () => {
    const backup = (await admin("/clients/backup")).json();
    expect(backup).toMatchObject({ id: "backup", enabled: true, changedAtGeneration: 0, inFlight: 0, signed: 1, refused: 1 });
    expect(backup.lastSigned).toEqual([{ pubkey: pk(0), type: "RANDAO_REVEAL", slot: null, at: expect.any(String) }]);
    expect(backup.lastSignedAt).toBe(backup.lastSigned[0].at);
    expect((await admin("/clients/nobody")).status).toBe(404);
  });

  it("disable at a newer generation applies; the client is refused with 403 CLIENT_DISABLED; others sign on", async () => {
    const res = await admin("/clients/backup/disable", { generation: 1 });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ id: "backup", enabled: false, changedAtGeneration: 1 });
    const refused = await backupSign(0, attestationBody(0, 1));
    expect(refused.status).toBe(403);
    expect(refused.json().code).toBe("CLIENT_DISABLED");
    expect((await primarySign(1, attestationBody(0, 1))).status).toBe(200);
    expect((await admin("/fencing")).json()).toEqual({ generation: 1 });
  });

  it("a stale generation gets 409 and changes nothing; the same generation again is accepted (idempotent retry)", async () => {
    const stale = await admin("/clients/primary/disable", { generation: 0 });
    expect(stale.status).toBe(409);
    expect(stale.json()).toMatchObject({ code: "STALE_GENERATION", currentGeneration: 1 });
    expect((await admin("/clients/primary")).json().enabled).toBe(true);
    const retry = await admin("/clients/backup/disable", { generation: 1 });
    expect(retry.status).toBe(200);
    expect((await admin("/clients/nobody/disable", { generation: 5 })).status).toBe(404);
    expect((await admin("/clients/backup/disable", { generation: "2" })).status).toBe(400);
  });

  it("a disabled client stays disabled after a restart; enabling it at a newer generation lets it sign again", async () => {
    await signer.close();
    ({ signer } = await start(config));
    expect((await admin("/fencing")).json()).toEqual({ generation: 1 });
    expect((await admin("/clients/backup")).json()).toMatchObject({ enabled: false, changedAtGeneration: 1 });
    expect((await backupSign(0, randaoBody(7))).status).toBe(403);
    const enabled = await admin("/clients/backup/enable", { generation: 2 });
    expect(enabled.json()).toMatchObject({ enabled: true, changedAtGeneration: 2 });
    expect((await backupSign(0, randaoBody(7))).status).toBe(200);
  });

  it("once disable has answered, no further signature is released to that client", async () => {
    let disableAnswered = false;
    let releasedAfterDisable = 0;
    let firstSigned!: () => void;
    const someSigned = new Promise<void>((r) => (firstSigned = r));
    const sends = Array.from({ length: 300 }, async (_, i) => {
      const res = await backupSign(i % 2, randaoBody(1000 + i));
      if (res.status === 200) firstSigned();
      if (res.status === 200 && disableAnswered) releasedAfterDisable++;
      return res;
    });
    await someSigned; // disable in the middle of the burst
    const res = await admin("/clients/backup/disable", { generation: 3 });
    expect(res.status).toBe(200);
    disableAnswered = true;
    const feed = async () =>
      (await admin(`/signatures?after=0&limit=10000`)).json().signatures.filter((s: { clientId: string }) => s.clientId === "backup").length;
    const atDisable = await feed();
    const replies = await Promise.all(sends);
    expect(await feed()).toBe(atDisable); // nothing released to backup after the disable answered
    const ok = replies.filter((r) => r.status === 200).length;
    const disabled = replies.filter((r) => r.status === 403 && r.json().code === "CLIENT_DISABLED").length;
    expect(ok + disabled).toBe(300);
    expect(ok).toBeGreaterThan(0);
    expect(disabled).toBeGreaterThan(0);
    // A 200 may still be in transit when disable answers; it was released (and audited) before.
    expect(releasedAfterDisable).toBeLessThanOrEqual(ok);
    await admin("/clients/backup/enable", { generation: 4 });
  });
});

describe("signatures audit feed", () => {
  it("lists every released signature in order, with paging", async () => {
    const all: { seq: number; signature: string; clientId: string; pubkey: string; type: string }[] = [];
    let after = 0;
    for (;;) {
      const page = (await admin(`/signatures?after=${after}&limit=7`)).json();
      all.push(...page.signatures);
      if (page.signatures.length === 0) break;
      expect(page.next).toBe(page.signatures[page.signatures.length - 1].seq);
      after = page.next;
    }
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(all.map((e) => e.signature).sort()).toEqual([...released].sort());
    const attestation = all.find((e) => e.type === "ATTESTATION")!;
    expect(attestation).toMatchObject({ clientId: "primary", pubkey: pk(1), slot: "8", sourceEpoch: "0", targetEpoch: "1" });
    expect((await admin("/signatures?limit=10001")).status).toBe(400);
  });

  it("is appended to <dataDir>/audit/signatures.jsonl (0600) and numbering survives a restart", async () => {
    await signer.close();
    const file = path.join(config.dataDir, "audit", "signatures.jsonl");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const lines = fs.readFileSync(file, "utf8").trim().split("\n");
    expect(lines).toHaveLength(released.length);
    ({ signer } = await start(config));
    const before = released.length;
    expect((await primarySign(3, randaoBody(55))).status).toBe(200);
    const page = (await admin(`/signatures?after=${before - 1}`)).json();
    expect(page.signatures.map((s: { seq: number }) => s.seq)).toEqual([before, before + 1]);
    // Older entries than memory holds come back from the file.
    expect((await admin(`/signatures?after=0&limit=3`)).json().signatures.map((s: { seq: number }) => s.seq)).toEqual([1, 2, 3]);
  });
});

describe("TLS client certificates", () => {
  it("a pinned client certificate fingerprint identifies its client", async () => {
    const dir = path.join(work, "tls");
    selfSignedCertificate(dir, "server", "localhost", "IP:127.0.0.1");
    selfSignedCertificate(dir, "client", "teku-1");
    selfSignedCertificate(dir, "other", "other");
    const fp = certificateSha256(path.join(dir, "client.crt"));
    const tlsConfig = testConfig(token, path.join(work, "tls-signer"), {
      tls: { cert: path.join(dir, "server.crt"), key: path.join(dir, "server.key"), requestClientCert: true },
      clients: [{ id: "teku-1", tlsClientCertSha256: fp, keys: [pk(3)] }],
      logLevel: "warn",
    });
    const { signer: tlsSigner } = await start(tlsConfig);
    try {
      expect(tlsSigner.url.startsWith("https://")).toBe(true);
      const request = (cert: string, key: string, i: number) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = https.request(
            `${tlsSigner.url}/api/v1/eth2/sign/${pk(i)}`,
            {
              method: "POST",
              headers: { "content-type": "application/json" },
              ca: fs.readFileSync(path.join(dir, "server.crt")),
              cert: fs.readFileSync(path.join(dir, cert)),
              key: fs.readFileSync(path.join(dir, key)),
            },
            (res) => {
              let body = "";
              res.on("data", (d) => (body += d));
              res.on("end", () => resolve({ status: res.statusCode!, body }));
            },
          );
          req.on("error", reject);
          req.end(JSON.stringify(randaoBody(3)));
        });
      expect((await request("client.crt", "client.key", 3)).status).toBe(200);
      expect((await request("client.crt", "client.key", 2)).status).toBe(403);
      expect((await request("other.crt", "other.key", 3)).status).toBe(401);
    } finally {
      await tlsSigner.close();
    }
  });
});

describe("admin API: a generation belongs to one decision", () => {
  it("only the decision that holds the current generation may retry at it, also after a restart", async () => {
    const next = (await admin("/fencing")).json().generation + 1;
    const a = await admin("/clients/standby/disable", { generation: next, decision: "failover-a" });
    expect(a.status).toBe(200);
    // A second watchdog that picked the same number: refused, nothing changes.
    const b = await admin("/clients/standby/enable", { generation: next, decision: "failover-b" });
    expect(b.status).toBe(409);
    expect(b.json()).toMatchObject({ code: "STALE_GENERATION", reason: "GENERATION_TAKEN", currentGeneration: next });
    expect((await admin("/clients/standby")).json().enabled).toBe(false);
    // The holder's own retry is idempotent.
    expect((await admin("/clients/standby/disable", { generation: next, decision: "failover-a" })).status).toBe(200);
    expect((await admin("/clients/standby/disable", { generation: next, decision: "not valid!" })).status).toBe(400);

    await signer.close();
    ({ signer } = await start(config));
    expect((await admin("/clients/standby/enable", { generation: next, decision: "failover-b" })).status).toBe(409);
    // A newer generation is open to any decision.
    expect((await admin("/clients/standby/enable", { generation: next + 1, decision: "failover-b" })).status).toBe(200);
    expect((await admin("/clients/standby/disable", { generation: next + 1, decision: "failover-b" })).status).toBe(200);
  });
});
