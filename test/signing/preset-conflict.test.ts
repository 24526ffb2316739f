/** If @lodestar/params was loaded (mainnet, the default) before Vigil set its preset, loadConsensus says so. */
import * as params from "@lodestar/params";
import { expect, it } from "vitest";
import { loadConsensus } from "../../signer/signing/index.js";

it("fails clearly when something imported @lodestar/params first with another preset", async () => {
  expect(params.ACTIVE_PRESET).toBe(process.env.LODESTAR_PRESET ?? "mainnet");
  const other = params.ACTIVE_PRESET === "minimal" ? "mainnet" : "minimal";
  await expect(loadConsensus(other)).rejects.toMatchObject({ code: "PRESET_CONFLICT" });
  await expect(loadConsensus(other)).rejects.toThrow(/loaded with preset/);
});
