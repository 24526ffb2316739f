// GET /api/v1/eth2/highWatermark on a real signer (SoftHSM2 token, SQLite file, loopback HTTP): {} until the
// operator sets one (through the admin handle `vigil slashing watermark` uses, on the running signer's file), then
// Web3Signer's {epoch, slot}; signing at or above it is refused with 412 and the reason, and allowed once removed.
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningSigner } from "../../signer/index.js";
import { openSlashingDbAdmin, type SlashingDbAdmin } from "../../slashing-db/index.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, blockBody, http, interopPubkey, sqliteFile, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const work = tempDir("vigil-signer-highwm-");
let token: TestToken;
let signer: RunningSigner;
let admin: SlashingDbAdmin;
const signUrl = () => `${signer.url}/api/v1/eth2/sign/${interopPubkey(0)}`;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-highwm", 1);
  const config = testConfig(token, path.join(work, "main"));
  ({ signer } = await start(config));
  admin = await openSlashingDbAdmin({ kind: "sqlite", path: sqliteFile(config) }, { mustExist: true });
}, 120_000);

afterAll(async () => {
  await admin?.close();
  await signer?.close();
  token?.destroy();
});

it("shows the high watermark; signing at or above it is refused (412) until it is removed", async () => {
  const url = `${signer.url}/api/v1/eth2/highWatermark`;
  expect((await http(url)).json()).toEqual({});
  expect((await http(signUrl(), { body: blockBody(10) })).status).toBe(200);

  await admin.setHighWatermark({ slot: 64n, epoch: 8n });
  const shown = await http(url);
  expect(shown.status).toBe(200);
  expect(shown.json()).toEqual({ epoch: "8", slot: "64" });

  expect((await http(signUrl(), { body: blockBody(63) })).status).toBe(200);
  const block = await http(signUrl(), { body: blockBody(64) });
  expect(block.status).toBe(412);
  expect(block.json()).toMatchObject({ code: "BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK", reason: "BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK" });
  expect((await http(signUrl(), { body: attestationBody(6, 7) })).status).toBe(200);
  const att = await http(signUrl(), { body: attestationBody(7, 8) });
  expect(att.status).toBe(412);
  expect(att.json().reason).toBe("ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK");

  await admin.removeHighWatermark({});
  expect((await http(url)).json()).toEqual({});
  expect((await http(signUrl(), { body: blockBody(64) })).status).toBe(200);
  expect((await http(signUrl(), { body: attestationBody(7, 8) })).status).toBe(200);
});
