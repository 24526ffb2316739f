// docs/migrate.md's Vigil-side steps, as an operator follows them: keystores laid out as Lighthouse writes them
// (validators/0x…/voting-keystore.json, the password in secrets/0x…) and Lighthouse's interchange export are
// flattened by the guide's own script, imported with `vigil keys import --config … --interchange …` into the
// config the signer runs with, and the real signer (its own process, SoftHSM2 token, SQLite file) then serves
// the keys and refuses or signs exactly as the imported history says.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { create } from "@chainsafe/bls-keystore";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { CHEAP_PBKDF2, randomKey, readyToken } from "../keystore/fixtures.js";
import { CLI, killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig, type SignerProcess } from "./cli-process.js";
import { attestationBody, blockBody, GVR, http } from "./harness.js";

const GUIDE = path.resolve(__dirname, "../../docs/migrate.md");
const work = tempDir("vigil-migrate-guide-");
const keys = [randomKey(), randomKey()];
const [moved, fresh] = keys as [ReturnType<typeof randomKey>, ReturnType<typeof randomKey>];
let token: TestToken;
let signer: SignerProcess | undefined;

/** The guide's flatten script, with its three variables and its output directory set as the operator would. */
function flattenScript(vars: { VALIDATORS: string; SECRETS: string; KEYSTORE: string; OUT: string }): string {
  const guide = fs.readFileSync(GUIDE, "utf8");
  const block = /<!-- flatten-script[^>]*-->\s*```sh\n([\s\S]*?)```/.exec(guide)?.[1];
  if (!block) throw new Error("docs/migrate.md lost its flatten script");
  const lines = block.split("\n");
  const assign = lines.findIndex((l) => l.startsWith("VALIDATORS="));
  const out = lines.findIndex((l) => l.startsWith("OUT="));
  expect(assign).toBeGreaterThanOrEqual(0);
  expect(out).toBeGreaterThanOrEqual(0);
  lines[assign] = `VALIDATORS='${vars.VALIDATORS}' SECRETS='${vars.SECRETS}' KEYSTORE='${vars.KEYSTORE}'`;
  lines[out] = `OUT='${vars.OUT}'`;
  return lines.join("\n");
}

beforeAll(async () => {
  token = readyToken("vigil-test-migrate-guide");
  // Lighthouse's layout: one directory per key, the password (no newline) in a file named after the key.
  const lighthouse = path.join(work, "lighthouse", "mainnet");
  for (const [i, k] of keys.entries()) {
    const password = `password of key ${i}`;
    const keystore = await create(password, k.secret, Buffer.from(k.pubkey.slice(2), "hex"), `m/12381/3600/${i}/0/0`, "", CHEAP_PBKDF2());
    fs.mkdirSync(path.join(lighthouse, "validators", k.pubkey), { recursive: true });
    fs.writeFileSync(path.join(lighthouse, "validators", k.pubkey, "voting-keystore.json"), JSON.stringify(keystore));
    fs.mkdirSync(path.join(lighthouse, "secrets"), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(lighthouse, "secrets", k.pubkey), password, { mode: 0o600 });
  }
  // What `lighthouse account validator slashing-protection export` writes: one key with history, one without.
  fs.writeFileSync(
    path.join(work, "interchange.json"),
    JSON.stringify({
      metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
      data: [
        {
          pubkey: moved.pubkey,
          signed_blocks: [{ slot: "100", signing_root: `0x${"01".repeat(32)}` }],
          signed_attestations: [{ source_epoch: "10", target_epoch: "11", signing_root: `0x${"02".repeat(32)}` }],
        },
        { pubkey: fresh.pubkey, signed_blocks: [], signed_attestations: [] },
      ],
    }),
  );
}, 60_000);

afterAll(async () => {
  if (signer) await stopWithSigterm(signer);
  killLeftovers();
  token?.destroy();
});

it("flatten, import keys and history into the signer's config, start: the history refuses and allows as it says", async () => {
  const out = path.join(work, "vigil-import");
  const lighthouse = path.join(work, "lighthouse", "mainnet");
  const script = flattenScript({
    VALIDATORS: path.join(lighthouse, "validators"),
    SECRETS: path.join(lighthouse, "secrets"),
    KEYSTORE: "voting-keystore.json",
    OUT: out,
  });
  const flattened = spawnSync("sh", ["-eu", "-c", script], { encoding: "utf8" });
  expect(flattened.status, flattened.stderr).toBe(0);
  expect(fs.readdirSync(out).sort()).toEqual(keys.flatMap((k) => [`${k.pubkey}.json`, `${k.pubkey}.txt`]).sort());
  expect(fs.statSync(out).mode & 0o777).toBe(0o700);

  const config = writeSignerConfig(token, path.join(work, "data"), path.join(work, "etc", "signer.json"));
  const imported = spawnSync(
    process.execPath,
    [CLI, "keys", "import", "--config", config, "--keystores", out, "--passwords-dir", out, "--interchange", path.join(work, "interchange.json")],
    { encoding: "utf8" },
  );
  expect(imported.status, imported.stderr).toBe(0);
  expect(imported.stdout).toMatch(/imported 2 key\(s\)/);
  expect(imported.stderr).toMatch(/imported history of 2 validator\(s\)/);

  signer = spawnSigner(config, "ignore");
  const url = await signer.ready;
  expect(((await http(`${url}/api/v1/eth2/publicKeys`)).json() as string[]).sort()).toEqual(keys.map((k) => k.pubkey).sort());
  const sign = (pubkey: string, body: object) => http(`${url}/api/v1/eth2/sign/${pubkey}`, { body });
  const reason = async (pubkey: string, body: object) => {
    const r = await sign(pubkey, body);
    expect(r.status).toBe(412);
    return r.json().reason as string;
  };

  expect(await reason(moved.pubkey, blockBody(100))).toBe("DOUBLE_BLOCK_PROPOSAL");
  expect(await reason(moved.pubkey, blockBody(99))).toBe("BLOCK_SLOT_AT_OR_BELOW_WATERMARK");
  expect(await reason(moved.pubkey, attestationBody(10, 11))).toBe("DOUBLE_VOTE");
  expect(await reason(moved.pubkey, attestationBody(9, 12))).toBe("SOURCE_BELOW_WATERMARK"); // older than anything imported
  expect((await sign(moved.pubkey, blockBody(101))).status).toBe(200);
  expect((await sign(moved.pubkey, attestationBody(11, 12))).status).toBe(200);
  expect((await sign(fresh.pubkey, blockBody(5))).status).toBe(200);
  expect((await sign(fresh.pubkey, attestationBody(1, 2))).status).toBe(200);
});
