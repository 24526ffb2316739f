// `vigil hsm …` and `vigil keys …` through the real binary: output, exit codes, files 0600.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { createToken, filesUnder, tokenDir, type TestToken } from "../helpers/softhsm.js";
import { randomKey, secretNeedles, writeKeystores } from "./fixtures.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const LABEL = "vigil-test-cli";
const GVR = `0x${"77".repeat(32)}`;
let token: TestToken;
let hsm: string[];
const keys = [randomKey(), randomKey()];

function vigil(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync("node", [VIGIL, ...args], { encoding: "utf8", env: { ...process.env, VIGIL_DATA_DIR: token.dataDir, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  token = createToken(LABEL);
  hsm = ["--module", token.config.module, "--token-label", LABEL, "--pin-file", token.pinFile];
  await writeKeystores(path.join(token.dataDir, "..", `${path.basename(token.dataDir)}-keystores`), keys, { perFilePasswords: true });
});
afterAll(() => {
  fs.rmSync(path.join(token.dataDir, "..", `${path.basename(token.dataDir)}-keystores`), { recursive: true, force: true });
  token.destroy();
});

const keystoreDir = () => path.join(token.dataDir, "..", `${path.basename(token.dataDir)}-keystores`);

describe("vigil hsm / keys", () => {
  it("before init: status says to run init; key commands exit 14", () => {
    const status = vigil(["hsm", "status", ...hsm]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/wrapping key: MISSING: run `vigil hsm init`/);
    const list = vigil(["keys", "list", ...hsm]);
    expect(list.code).toBe(EXIT_CODES.hsmWrappingKeyMissing);
    expect(list.stderr.trim().split("\n")).toHaveLength(1);
    expect(list.stderr).toContain("run `vigil hsm init`");
  });

  it("hsm init creates the wrapping key once", () => {
    expect(vigil(["hsm", "init", ...hsm]).stdout).toMatch(/created wrapping key/);
    const again = vigil(["hsm", "init", ...hsm]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already has a wrapping key; left unchanged/);
    const status = vigil(["hsm", "status", ...hsm]);
    expect(status.stdout).toMatch(/CKM_AES_KEY_GEN yes, CKM_AES_GCM yes/);
    expect(status.stdout).toMatch(/keys: +0/);
    expect(status.stdout).toMatch(/wrapping key: present \(vigil-wrapping-key-v1\)\n/);
    const json = JSON.parse(vigil(["hsm", "status", "--json", ...hsm]).stdout);
    expect(json.mechanisms).toContain("CKM_AES_GCM");
    expect(json.token.label).toBe(LABEL);
  });

  it("keys import (per-keystore .txt passwords + interchange), idempotent", () => {
    const interchange = path.join(token.dataDir, "history.json");
    fs.writeFileSync(
      interchange,
      JSON.stringify({
        metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
        data: keys.map((k) => ({ pubkey: k.pubkey, signed_blocks: [{ slot: "100" }], signed_attestations: [{ source_epoch: "2", target_epoch: "3" }] })),
      }),
    );
    const db = path.join(token.dataDir, "slashing.sqlite");
    const r = vigil(["keys", "import", "--keystores", keystoreDir(), "--interchange", interchange, "--db", db, ...hsm]);
    expect(r.stdout).toMatch(/imported 2 key\(s\); 0 already on token/);
    expect(r.stderr).toMatch(/slashing protection: imported history of 2 validator/);
    expect(r.code).toBe(0);
    const again = vigil(["keys", "import", "--keystores", keystoreDir(), "--json", ...hsm]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).unchanged.sort()).toEqual(keys.map((k) => k.pubkey).sort());
    const list = vigil(["keys", "list", "--json", ...hsm]);
    expect(JSON.parse(list.stdout)).toEqual(keys.map((k) => k.pubkey).sort());
  });

  it("keys generate prints new public keys; keys verify loads them all", () => {
    const r = vigil(["keys", "generate", "--count", "2", ...hsm]);
    expect(r.code).toBe(0);
    const generated = r.stdout.trim().split("\n");
    expect(generated).toHaveLength(2);
    for (const p of generated) expect(p).toMatch(/^0x[0-9a-f]{96}$/);
    expect(vigil(["keys", "verify", ...hsm]).stdout).toMatch(/^4 key\(s\) verified/);
    expect(vigil(["hsm", "status", ...hsm]).stdout).toMatch(/keys: +4/);
  });

  it("keys delete needs --yes, exports the history to a 0600 file it names, then deletes", () => {
    const db = path.join(token.dataDir, "slashing.sqlite");
    const pk = keys[0]!.pubkey;
    const noYes = vigil(["keys", "delete", pk, "--db", db, ...hsm]);
    expect(noYes.code).toBe(EXIT_CODES.usage);
    const unknown = vigil(["keys", "delete", randomKey().pubkey, "--yes", "--db", db, ...hsm]);
    expect(unknown.code).toBe(EXIT_CODES.notFound);
    const noDb = vigil(["keys", "delete", pk, "--yes", "--db", path.join(token.dataDir, "none.sqlite"), ...hsm]);
    expect(noDb.code).toBe(EXIT_CODES.notFound);
    expect(noDb.stderr).toMatch(/no slashing database at .*none\.sqlite; the keys' history must be exported before deletion/);
    expect(fs.existsSync(path.join(token.dataDir, "none.sqlite"))).toBe(false); // refused, not created empty

    const r = vigil(["keys", "delete", pk, "--yes", "--db", db, ...hsm]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`deleted ${pk}`);
    const file = /written to (.+)$/m.exec(r.stderr)?.[1];
    expect(file).toBeDefined();
    expect(path.dirname(file!)).toBe(token.dataDir);
    expect(fs.statSync(file!).mode & 0o777).toBe(0o600);
    const exported = JSON.parse(fs.readFileSync(file!, "utf8"));
    expect(exported.metadata.genesis_validators_root).toBe(GVR);
    expect(exported.data.map((d: { pubkey: string }) => d.pubkey)).toEqual([pk]);
    expect(exported.data[0].signed_blocks[0].slot).toBe("100");
    expect(JSON.parse(vigil(["keys", "list", "--json", ...hsm]).stdout)).not.toContain(pk);
  });

  it("PIN from an environment variable, a systemd credential, or a config file", () => {
    const base = ["--module", token.config.module, "--token-label", LABEL];
    expect(vigil(["keys", "list", ...base, "--pin-env", "MY_HSM_PIN"], { MY_HSM_PIN: token.pin }).code).toBe(0);
    const creds = path.join(token.dataDir, "creds");
    fs.mkdirSync(creds, { mode: 0o700 });
    fs.writeFileSync(path.join(creds, "hsm-pin"), token.pin, { mode: 0o400 });
    expect(vigil(["keys", "list", ...base, "--pin-credential", "hsm-pin"], { CREDENTIALS_DIRECTORY: creds }).code).toBe(0);
    const config = path.join(token.dataDir, "vigil.json");
    fs.writeFileSync(config, JSON.stringify({ hsm: { module: token.config.module, tokenLabel: LABEL, pin: { file: token.pinFile } } }));
    expect(vigil(["keys", "list", "--config", config]).code).toBe(0);
    fs.writeFileSync(config, JSON.stringify({ hsm: { module: token.config.module, tokenLabel: LABEL, pin: token.pin } }));
    const inline = vigil(["keys", "list", "--config", config]);
    expect(inline.code).toBe(EXIT_CODES.pinSourceInsecure);
    expect(inline.stderr).not.toContain(token.pin);
  });

  it("each failure is one line with its own exit code", () => {
    const cases: [string[], number, RegExp][] = [
      [["--module", "/nope/lib.so", "--token-label", LABEL, "--pin-file", token.pinFile], EXIT_CODES.hsmModule, /module \/nope\/lib\.so not found/],
      [
        ["--module", token.config.module, "--token-label", "missing", "--pin-file", token.pinFile],
        EXIT_CODES.hsmTokenNotFound,
        new RegExp(`tokens present: .*"${LABEL}"`),
      ],
    ];
    const wrongPin = path.join(token.dataDir, "wrong-pin");
    fs.writeFileSync(wrongPin, "not-the-pin", { mode: 0o600 });
    cases.push([["--module", token.config.module, "--token-label", LABEL, "--pin-file", wrongPin], EXIT_CODES.hsmWrongPin, /wrong PIN/]);
    const loosePin = path.join(token.dataDir, "loose-pin");
    fs.writeFileSync(loosePin, token.pin, { mode: 0o644 });
    fs.chmodSync(loosePin, 0o644);
    cases.push([
      ["--module", token.config.module, "--token-label", LABEL, "--pin-file", loosePin],
      EXIT_CODES.pinSourceInsecure,
      /accessible by group or others/,
    ]);
    for (const [args, code, message] of cases) {
      const r = vigil(["keys", "list", ...args]);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toContain(token.pin);
    }
  });

  it("nothing under the token or data directory contains an imported secret key", () => {
    for (const file of [...filesUnder(tokenDir()), ...filesUnder(token.dataDir)]) {
      const content = fs.readFileSync(file);
      for (const k of keys) for (const needle of secretNeedles(k.secret)) expect(content.includes(needle), file).toBe(false);
    }
  });
});
