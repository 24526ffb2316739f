// The last gate with a durable audit entry in between (SigningService.release): while a block or attestation
// entry is being synced the request still counts as in flight (the watchdog drains on it), nothing is sent
// before the sync, and a disable answered during the sync wins. The audit file's sync is the one part that a
// test cannot hold open on a real disk, so only it is replaced by a promise the test resolves; the fencing
// store is real (SQLite file) and the signing root is computed for real.
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { SlashingProtection } from "../../slashing-db/index.js";
import type { AuditLog } from "../../signer/server/audit-log.js";
import { ClientState } from "../../signer/server/auth.js";
import { errorReply } from "../../signer/server/errors.js";
import { SqliteClientFencing } from "../../signer/server/fencing/sqlite.js";
import { SigningService } from "../../signer/server/signing-service.js";
import { loadConsensus, MINIMAL_DEVNET, type BlsPool } from "../../signer/signing/index.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, GVR, randaoBody } from "./harness.js";

const work = tempDir("vigil-release-gate-");
const PK = `0x${"a1".repeat(48)}`;

function setUp(name: string) {
  const fencing = SqliteClientFencing.open(path.join(work, name, "signer-state.sqlite"));
  const syncs: (() => void)[] = [];
  const durable: boolean[] = [];
  const audit = {
    append: (_entry: unknown, opts: { durable: boolean }) => {
      durable.push(opts.durable);
      return opts.durable ? new Promise<void>((resolve) => syncs.push(resolve)) : undefined;
    },
  } as unknown as AuditLog;
  const slashing = { checkAndRecord: async () => "recorded", pin: async () => {}, genesisValidatorsRoot: GVR } as unknown as SlashingProtection;
  const pool = { publicKeys: [PK], sign: async () => new Uint8Array(96).fill(7) } as unknown as BlsPool;
  const service = new SigningService({ network: MINIMAL_DEVNET, slashing, pool, fencing, audit, maxQueueDepth: 10, maxWaitMs: 60_000 });
  return { fencing, service, syncs, durable, client: new ClientState("primary", undefined) };
}

beforeAll(async () => {
  await loadConsensus("minimal");
});

describe("release with a durable audit entry", () => {
  it("an attestation is sent only after its entry is synced, and counts as in flight until then", async () => {
    const { service, syncs, durable, client } = setUp("ok");
    const signed = await service.sign(client, PK, attestationBody(1, 2));
    const sent: string[] = [];
    const releasing = service.release(client, signed, (s) => sent.push(s));
    await new Promise((r) => setImmediate(r));
    expect(durable).toEqual([true]);
    expect(sent).toEqual([]);
    expect(client.inFlight).toBe(1);
    expect(service.queueDepth).toBe(1);
    syncs[0]!();
    await releasing;
    expect(sent).toEqual([`0x${"07".repeat(96)}`]);
    expect(client.inFlight).toBe(0);
    expect(client.signed).toBe(1);
  });

  it("a disable answered while the entry is being synced wins: nothing is sent", async () => {
    const { fencing, service, syncs, client } = setUp("disabled");
    const signed = await service.sign(client, PK, attestationBody(1, 2));
    const sent: string[] = [];
    const releasing = service.release(client, signed, (s) => sent.push(s));
    await new Promise((r) => setImmediate(r));
    expect((await fencing.apply("primary", false, 1)).ok).toBe(true); // the admin API answers "disabled" here
    syncs[0]!();
    const refusal = await releasing.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refusal).toMatchObject({ code: "CLIENT_DISABLED", clientId: "primary", duringSigning: true });
    expect(errorReply(refusal)).toMatchObject({ status: 403, body: { code: "CLIENT_DISABLED" } });
    expect(sent).toEqual([]);
    expect(client.inFlight).toBe(0);
    expect(client.signed).toBe(0);
  });

  it("other types are not synced before the reply", async () => {
    const { service, durable, client } = setUp("randao");
    const signed = await service.sign(client, PK, randaoBody(3));
    const sent: string[] = [];
    await service.release(client, signed, (s) => sent.push(s));
    expect(durable).toEqual([false]);
    expect(sent).toHaveLength(1);
  });
});
