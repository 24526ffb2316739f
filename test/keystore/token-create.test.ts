// Token creation goes through PKCS#11 in-process (C_InitToken, then C_InitPIN as the security officer), so no
// PIN ever reaches a command line or a child's environment, where any local user can read it
// (/proc/<pid>/cmdline). The first run (`npm start`) and the test helpers both use it.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { createToken, HsmWrongPinError, initToken, tokenStatus, TokenExistsError } from "../../signer/keystore/index.js";
import { acquireModule, ckrName, findSlot, P, releaseModule } from "../../signer/keystore/pkcs11-session.js";
import { deleteToken, SOFTHSM_MODULE, softhsmConfPath } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const LABEL = `vigil-create-${process.pid}`.slice(0, 32);
const PIN = "user-pin-7f3a9c";
const SO_PIN = "so-pin-41d2e8b0";
const dir = tempDir("vigil-token-create-");

softhsmConfPath();
afterAll(() => deleteToken(LABEL));

function pinFile(name: string, pin: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${pin}\n`, { mode: 0o600 });
  return file;
}

/** Logs in as security officer on the token (through the same per-process module binding). */
function soLogin(label: string, soPin: string): string {
  const pkcs11 = acquireModule(SOFTHSM_MODULE, () => new P.PKCS11());
  try {
    const session = pkcs11.C_OpenSession(findSlot(pkcs11, label), P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    try {
      pkcs11.C_Login(session, P.CKU_SO, soPin);
      pkcs11.C_Logout(session);
      return "ok";
    } catch (err) {
      return ckrName(err);
    } finally {
      pkcs11.C_CloseSession(session);
    }
  } finally {
    releaseModule(SOFTHSM_MODULE);
  }
}

describe("createToken (PKCS#11)", () => {
  it("creates a usable token: the user PIN given opens it, the SO PIN logs in as security officer", () => {
    deleteToken(LABEL);
    createToken({ module: SOFTHSM_MODULE, label: LABEL, pin: PIN, soPin: SO_PIN });
    const hsm = { module: SOFTHSM_MODULE, tokenLabel: LABEL, pin: { file: pinFile("pin", PIN) } };
    const status = tokenStatus(hsm);
    expect(status.token.label).toBe(LABEL);
    expect(status.token.pinState).toBe("ok");
    expect(initToken(hsm).created).toBe(true); // a logged-in read-write session creates the wrapping key
    expect(() => tokenStatus({ ...hsm, pin: { file: pinFile("wrong", "not-the-pin") } })).toThrow(HsmWrongPinError);
    expect(soLogin(LABEL, SO_PIN)).toBe("ok");
    expect(soLogin(LABEL, "wrong-so-pin")).toBe("CKR_PIN_INCORRECT");
  });

  it("refuses a label that exists, leaving that token as it was", () => {
    let err: unknown;
    try {
      createToken({ module: SOFTHSM_MODULE, label: LABEL, pin: "other-pin", soPin: "other-so-pin" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokenExistsError);
    expect((err as TokenExistsError).exitCode).toBe(EXIT_CODES.conflict);
    const status = tokenStatus({ module: SOFTHSM_MODULE, tokenLabel: LABEL, pin: { file: pinFile("pin", PIN) } });
    expect(status.wrappingKey.present).toBe(true);
  });

  it("refuses a label PKCS#11 cannot hold, and never puts a PIN in an error", () => {
    expect(() => createToken({ module: SOFTHSM_MODULE, label: "x".repeat(33), pin: PIN, soPin: SO_PIN })).toThrow(/1 to 32 bytes/);
    expect(() => createToken({ module: SOFTHSM_MODULE, label: "", pin: PIN, soPin: SO_PIN })).toThrow(/1 to 32 bytes/);
    try {
      createToken({ module: "/nonexistent/libpkcs11.so", label: "x", pin: PIN, soPin: SO_PIN });
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(PIN);
    }
  });
});

describe("vigil hsm create-token", () => {
  const CLI_LABEL = `vigil-cli-create-${process.pid}`.slice(0, 32);
  afterAll(() => deleteToken(CLI_LABEL));
  const vigil = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, "bin/vigil.js"), ...args], { encoding: "utf8" });

  it("takes the user PIN from the PIN source, generates the SO PIN into a 0600 file, and refuses a second time", () => {
    deleteToken(CLI_LABEL);
    const userPin = pinFile("cli-pin", "cli-user-pin-0a1b2c");
    const soPinFile = path.join(dir, "cli-so.pin");
    const hsmFlags = ["--module", SOFTHSM_MODULE, "--token-label", CLI_LABEL, "--pin-file", userPin];
    const r = vigil(["hsm", "create-token", ...hsmFlags, "--so-pin-file", soPinFile]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`created token "${CLI_LABEL}"; user PIN from PIN file ${userPin}`));
    expect(fs.statSync(soPinFile).mode & 0o777).toBe(0o600);
    const soPin = fs.readFileSync(soPinFile, "utf8").trim();
    expect(soPin).toMatch(/^[0-9a-f]{32}$/);
    expect(r.stdout + r.stderr).not.toContain(soPin);
    expect(r.stdout + r.stderr).not.toContain("cli-user-pin-0a1b2c");
    expect(vigil(["hsm", "status", ...hsmFlags]).status).toBe(0); // the user PIN opens it
    expect(soLogin(CLI_LABEL, soPin)).toBe("ok");

    const again = vigil(["hsm", "create-token", ...hsmFlags, "--so-pin-file", soPinFile]);
    expect(again.status).toBe(EXIT_CODES.conflict);
    expect(again.stderr).toMatch(/^vigil: a token labelled ".*" already exists; .*\[HSM_TOKEN_EXISTS\]\n$/);
    expect(fs.readFileSync(soPinFile, "utf8").trim()).toBe(soPin); // an existing SO PIN file is read, never replaced
  });
});

describe("no PIN on a command line", () => {
  /** Source, scripts and docs of the checkout (not dependencies or build output). */
  function files(dirPath: string): string[] {
    const out: string[] = [];
    for (const entry of fs.readdirSync(dirPath, { withFileTypes: true })) {
      if (["node_modules", "dist", ".git", "data"].includes(entry.name)) continue;
      const p = path.join(dirPath, entry.name);
      if (entry.isDirectory()) out.push(...files(p));
      else if (entry.isFile() && /(\.(ts|js|mjs|cjs|sh|md|json|service)|\/run|-admin)$/.test(p)) out.push(p);
    }
    return out;
  }

  it("no source file passes a PIN flag to softhsm2-util, pkcs11-tool or any other command", () => {
    // A user or SO PIN flag as an argv element, or on a softhsm2-util/pkcs11-tool command line; not the
    // -file/-env/-credential flags, which only say where a PIN is.
    const argvFlag = /["'`]--(so-)?pin["'`=]/;
    const toolLine = /(softhsm2-util|pkcs11-tool)\b.*\s--(so-)?pin(\s|=|$)/;
    const scanned = files(ROOT);
    expect(scanned.some((f) => f.endsWith("signer/server/embedded.ts"))).toBe(true);
    const hits = scanned.flatMap((f) =>
      fs
        .readFileSync(f, "utf8")
        .split("\n")
        .map((line, i) => ({ where: `${path.relative(ROOT, f)}:${i + 1}`, line }))
        .filter(({ line }) => argvFlag.test(line) || toolLine.test(line))
        .map(({ where, line }) => `${where}: ${line.trim()}`),
    );
    expect(hits).toEqual([]);
  });
});
