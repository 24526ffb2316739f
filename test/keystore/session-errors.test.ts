// Each HSM failure an operator can hit: one clear error with its own exit code.
import fs from "node:fs";
import path from "node:path";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { HsmModuleError, HsmPinLockedError, HsmTokenNotFoundError, HsmWrappingKeyMissingError, HsmWrongPinError } from "../../signer/keystore/errors.js";
import { Pkcs11KeyStore } from "../../signer/keystore/pkcs11-keystore.js";
import { mapLoginError, TokenSession, type Pkcs11 } from "../../signer/keystore/pkcs11-session.js";
import { createToken, SOFTHSM_MODULE, type TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";

const LABEL = "vigil-test-errors";
const dir = tempDir("vigil-errors-");
let token: TestToken;

beforeAll(() => {
  token = createToken(LABEL);
});
afterAll(() => token.destroy());

function caught(fn: () => unknown): Error & { exitCode?: number } {
  try {
    fn();
  } catch (err) {
    return err as Error & { exitCode?: number };
  }
  throw new Error("expected an error");
}

describe("module", () => {
  it("missing module: exit 10, names the path", () => {
    const err = caught(() => Pkcs11KeyStore.open({ ...token.config, module: "/nonexistent/libpkcs11.so" }));
    expect(err).toBeInstanceOf(HsmModuleError);
    expect(err.exitCode).toBe(EXIT_CODES.hsmModule);
    expect(err.message).toBe("PKCS#11 module /nonexistent/libpkcs11.so not found");
  });

  it("a file that is not a PKCS#11 library: exit 10", () => {
    const notLib = path.join(dir, "not-a-library.so");
    fs.writeFileSync(notLib, "hello");
    const err = caught(() => Pkcs11KeyStore.open({ ...token.config, module: notLib }));
    expect(err).toBeInstanceOf(HsmModuleError);
    expect(err.message).toMatch(/is not a PKCS#11 library/);
    // A real shared library without C_GetFunctionList.
    const libz = ["/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/aarch64-linux-gnu/libz.so.1"].find((f) =>
      fs.existsSync(f),
    );
    if (libz) {
      const err2 = caught(() => Pkcs11KeyStore.open({ ...token.config, module: libz }));
      expect(err2).toBeInstanceOf(HsmModuleError);
      expect(err2.message).toMatch(/is not a PKCS#11 library/);
    }
  });
});

describe("token and login", () => {
  it("token not found: exit 11, lists the labels present", () => {
    const err = caught(() => Pkcs11KeyStore.open({ ...token.config, tokenLabel: "no-such-token" }));
    expect(err).toBeInstanceOf(HsmTokenNotFoundError);
    expect(err.exitCode).toBe(EXIT_CODES.hsmTokenNotFound);
    expect(err.message).toContain(`"${LABEL}"`);
  });

  it("wrong PIN: exit 12, PIN not in the message", () => {
    const pinFile = path.join(dir, "wrong-pin");
    fs.writeFileSync(pinFile, "0000-wrong", { mode: 0o600 });
    const err = caught(() => Pkcs11KeyStore.open({ ...token.config, pin: { file: pinFile } }));
    expect(err).toBeInstanceOf(HsmWrongPinError);
    expect(err.exitCode).toBe(EXIT_CODES.hsmWrongPin);
    expect(err.message).not.toContain("0000-wrong");
  });

  it("wrapping key missing: exit 14, says to run vigil hsm init", () => {
    const err = caught(() => Pkcs11KeyStore.open(token.config));
    expect(err).toBeInstanceOf(HsmWrappingKeyMissingError);
    expect(err.exitCode).toBe(EXIT_CODES.hsmWrappingKeyMissing);
    expect(err.message).toContain("vigil hsm init");
  });

  it("maps CKR codes from C_Login", () => {
    const e = (name: string) => new pkcs11js.Pkcs11Error(name, (pkcs11js as unknown as Record<string, number>)[name], "C_Login");
    expect(mapLoginError(e("CKR_PIN_INCORRECT"), "t")).toBeInstanceOf(HsmWrongPinError);
    expect(mapLoginError(e("CKR_PIN_LOCKED"), "t")).toBeInstanceOf(HsmPinLockedError);
    expect(mapLoginError(e("CKR_DEVICE_ERROR"), "t").message).toContain("CKR_DEVICE_ERROR");
  });
});

// SoftHSM2 never locks a PIN, so a fake binding plays a token that does.
describe("PIN locked (simulated)", () => {
  const fakeModule = path.join(dir, "fake-module.so");
  fs.writeFileSync(fakeModule, "");

  function fakePkcs11(opts: { lockedFlag: boolean; loginError?: string }): { factory: () => Pkcs11; calls: string[] } {
    const calls: string[] = [];
    const fake = {
      load: () => calls.push("load"),
      close: () => calls.push("close"),
      C_Initialize: () => calls.push("C_Initialize"),
      C_Finalize: () => calls.push("C_Finalize"),
      C_GetSlotList: () => [Buffer.from([1])],
      C_GetTokenInfo: () => ({
        label: "locked-token".padEnd(32, " "),
        flags: pkcs11js.CKF_TOKEN_INITIALIZED | (opts.lockedFlag ? pkcs11js.CKF_USER_PIN_LOCKED : 0),
      }),
      C_OpenSession: () => Buffer.from([7]),
      C_CloseSession: () => calls.push("C_CloseSession"),
      C_Logout: () => calls.push("C_Logout"),
      C_Login: () => {
        calls.push("C_Login");
        if (opts.loginError) throw new pkcs11js.Pkcs11Error(opts.loginError, (pkcs11js as unknown as Record<string, number>)[opts.loginError], "C_Login");
      },
    };
    return { factory: () => fake as unknown as Pkcs11, calls };
  }

  it("C_Login returning CKR_PIN_LOCKED: exit 13", () => {
    const { factory, calls } = fakePkcs11({ lockedFlag: false, loginError: "CKR_PIN_LOCKED" });
    const err = caught(() => TokenSession.open({ module: fakeModule, tokenLabel: "locked-token", readWrite: true, factory }, () => "1234"));
    expect(err).toBeInstanceOf(HsmPinLockedError);
    expect(err.exitCode).toBe(EXIT_CODES.hsmPinLocked);
    expect(calls).toContain("C_Finalize"); // the module is released again
  });

  it("token flagged CKF_USER_PIN_LOCKED: refused before any login attempt", () => {
    const { factory, calls } = fakePkcs11({ lockedFlag: true });
    const err = caught(() => TokenSession.open({ module: fakeModule, tokenLabel: "locked-token", readWrite: true, factory }, () => "1234"));
    expect(err).toBeInstanceOf(HsmPinLockedError);
    expect(calls).not.toContain("C_Login");
  });

  it("through the key store, with the PIN read from its source", () => {
    const { factory } = fakePkcs11({ lockedFlag: false, loginError: "CKR_PIN_LOCKED" });
    const err = caught(() => Pkcs11KeyStore.open({ module: fakeModule, tokenLabel: "locked-token", pin: { env: "VIGIL_TEST_PIN" } }, { factory }));
    // The env var is unset: the PIN source fails first, after module and token were found.
    expect(err.exitCode).toBe(EXIT_CODES.pinSourceInsecure);
    process.env.VIGIL_TEST_PIN = "1234";
    try {
      const err2 = caught(() => Pkcs11KeyStore.open({ module: fakeModule, tokenLabel: "locked-token", pin: { env: "VIGIL_TEST_PIN" } }, { factory }));
      expect(err2).toBeInstanceOf(HsmPinLockedError);
    } finally {
      delete process.env.VIGIL_TEST_PIN;
    }
  });
});

it("uses the SoftHSM2 module", () => {
  expect(fs.existsSync(SOFTHSM_MODULE)).toBe(true);
});
