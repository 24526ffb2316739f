// POST/GET /reload (Web3Signer's) and SIGHUP: the token is enumerated again while requests are in flight; none of
// them fails, a key added to the token becomes signable, a key removed from it is refused afterwards.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openKeyStore } from "../../signer/keystore/index.js";
import type { RunningSigner } from "../../signer/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { http, interopPubkey, randaoBody, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const work = tempDir("vigil-signer-reload-");
const pk = (i: number) => interopPubkey(i);
let token: TestToken;
let signer: RunningSigner;

const sign = (i: number, epoch: number) => http(`${signer.url}/api/v1/eth2/sign/${pk(i)}`, { body: randaoBody(epoch) });

async function untilSettled(): Promise<{ status: string; lastOperationTime?: string; lastError?: string }> {
  for (;;) {
    const view = (await http(`${signer.url}/reload`)).json();
    if (view.status !== "running") return view;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Changes the token behind the running signer's back, as `vigil keys import/delete` in another process would. */
async function onToken(change: (store: ReturnType<typeof openKeyStore>) => Promise<unknown>): Promise<void> {
  const store = openKeyStore(token.config);
  try {
    await change(store);
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-reload", 2);
  // Room for 1,000 requests at once: none may be shed for load, so that any failure is the reload's.
  ({ signer } = await start(
    testConfig(token, path.join(work, "data"), { logLevel: "warn", limits: { maxConnections: 4096, maxWaitMs: 60_000, maxQueueDepth: 100_000 } }),
  ));
}, 120_000);

afterAll(async () => {
  await signer?.close();
  token?.destroy();
});

describe("key reload", () => {
  it("GET /reload is idle before the first reload", async () => {
    const res = await http(`${signer.url}/reload`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: "idle" });
  });

  it("reloads while 1,000 requests are in flight: none fails; the new key signs, the removed one is refused; 409 meanwhile", async () => {
    await onToken(async (store) => {
      await store.importKeys([{ secretKey: interopSecretKey(2), pubkey: pk(2) }]);
      await store.delete([pk(1)]);
    });
    expect((await sign(2, 1)).status).toBe(404); // on the token, not loaded yet

    // 1,000 for a key that stays, and some for the key being removed: those admitted before the reload must still
    // be signed; those arriving after it are refused as for any unknown key, never dropped or failed otherwise.
    // The reload starts once the signer is answering them (the first 50 are back), with most still to come: how
    // many the server holds at that instant depends on the machine's speed, how many are unanswered does not.
    let answered = 0;
    const inFlight = Array.from({ length: 1000 }, (_, n) => sign(0, n).finally(() => answered++));
    const forRemoved = Array.from({ length: 200 }, (_, n) => sign(1, n));
    const deadline = Date.now() + 30_000;
    while (answered < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    const unanswered = 1000 - answered;
    const atReload = signer.stats().inFlight;
    const started = await http(`${signer.url}/reload`, { method: "POST" });
    expect(started.status).toBe(202);
    expect(started.json().status).toBe("accepted");
    // A second POST while the first runs is refused (409 RELOAD_RUNNING). Whether the first still runs when it
    // arrives depends on the machine (it waits only for the removed key's requests still in flight): either it
    // is refused, or the first had completed and it starts the next. The refusal itself is asserted
    // deterministically at the service by the startReload test below (the route maps it to 409).
    const second = await http(`${signer.url}/reload`, { method: "POST" });
    if (second.status === 409) expect(second.json().code).toBe("RELOAD_RUNNING");
    else expect(second.status).toBe(202);

    const replies = await Promise.all(inFlight);
    expect(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`)).toEqual([]);
    const removedReplies = await Promise.all(forRemoved);
    expect(removedReplies.filter((r) => r.status !== 200 && !(r.status === 404 && r.json().code === "UNKNOWN_PUBKEY"))).toEqual([]);
    expect(unanswered).toBeGreaterThanOrEqual(500);
    expect(atReload).toBeGreaterThan(0);
    const done = await untilSettled();
    expect(done).toEqual({ status: "completed", lastOperationTime: expect.any(String) });

    expect((await sign(2, 2)).status).toBe(200);
    const removed = await sign(1, 2);
    expect(removed.status).toBe(404);
    expect((await sign(0, 2000)).status).toBe(200);
    expect(signer.stats().keys).toBe(2);
  }, 120_000);

  it("startReload (what SIGHUP calls) reloads too, and refuses a second while one runs", async () => {
    await onToken((store) => store.importKeys([{ secretKey: interopSecretKey(3), pubkey: pk(3) }]));
    expect(signer.startReload()).toBe(true);
    expect(signer.startReload()).toBe(false);
    expect((await untilSettled()).status).toBe("completed");
    expect((await sign(3, 1)).status).toBe(200);
  }, 60_000);

  it("a web page cannot trigger it (the HTTP guard refuses any Origin)", async () => {
    const res = await http(`${signer.url}/reload`, { method: "POST", headers: { origin: "https://evil.example" } });
    expect(res.status).toBe(403);
  });
});
