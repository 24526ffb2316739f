// PIN sources and the `hsm` config section: no inline PINs, no group/world-readable PIN files.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { loadHsmConfig, parseHsmSection } from "../../signer/keystore/config.js";
import { PinSourceError } from "../../signer/keystore/errors.js";
import { readPin } from "../../signer/keystore/pin.js";
import { tempDir } from "../helpers/tmp.js";

const dir = tempDir("vigil-pin-");

function pinFile(name: string, content: string, mode: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  fs.chmodSync(file, mode);
  return file;
}

describe("readPin", () => {
  it("reads a 0600 or 0400 file and drops the final newline", () => {
    expect(readPin({ file: pinFile("a", "1234\n", 0o600) })).toBe("1234");
    expect(readPin({ file: pinFile("b", "12 34", 0o400) })).toBe("12 34");
  });

  it.each([0o640, 0o644, 0o604, 0o660, 0o620])("refuses a PIN file with mode %o (exit 16)", (mode) => {
    const file = pinFile(`m${mode.toString(8)}`, "1234", mode);
    try {
      readPin({ file });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PinSourceError);
      expect((err as PinSourceError).exitCode).toBe(EXIT_CODES.pinSourceInsecure);
      expect((err as Error).message).toContain("chmod 600");
      expect((err as Error).message).not.toContain("1234");
    }
  });

  it("refuses a missing or empty file", () => {
    expect(() => readPin({ file: path.join(dir, "nope") })).toThrow(PinSourceError);
    expect(() => readPin({ file: pinFile("empty", "\n", 0o600) })).toThrow(/empty/);
  });

  it("reads a systemd credential from $CREDENTIALS_DIRECTORY", () => {
    const creds = path.join(dir, "creds");
    fs.mkdirSync(creds);
    fs.writeFileSync(path.join(creds, "vigil-pin"), "9876", { mode: 0o400 });
    expect(readPin({ credential: "vigil-pin" }, { CREDENTIALS_DIRECTORY: creds })).toBe("9876");
    expect(() => readPin({ credential: "vigil-pin" }, {})).toThrow(/CREDENTIALS_DIRECTORY/);
    expect(() => readPin({ credential: "../x" }, { CREDENTIALS_DIRECTORY: creds })).toThrow(PinSourceError);
  });

  it("reads a named environment variable", () => {
    expect(readPin({ env: "MY_PIN" }, { MY_PIN: "5555" })).toBe("5555");
    expect(() => readPin({ env: "MY_PIN" }, {})).toThrow(/MY_PIN is not set/);
  });
});

describe("hsm config", () => {
  it("never accepts the PIN inline", () => {
    expect(() => parseHsmSection({ pin: "1234" })).toThrow(PinSourceError);
    expect(() => parseHsmSection({ pin: { value: "1234" } })).toThrow(PinSourceError);
    expect(() => parseHsmSection({ pin: { file: "/a", env: "B" } })).toThrow(/exactly one/);
    expect(() => parseHsmSection({ modul: "/x" })).toThrow(/config: hsm.modul is not a known setting/);
  });

  it("loads the file and lets flags override it", () => {
    const file = path.join(dir, "vigil.json");
    fs.writeFileSync(file, JSON.stringify({ other: {}, hsm: { module: "/m.so", tokenLabel: "t", pin: { credential: "c" } } }));
    expect(loadHsmConfig(file)).toEqual({ module: "/m.so", tokenLabel: "t", pin: { credential: "c" } });
    expect(loadHsmConfig(file, { tokenLabel: "u", pinEnv: "P" })).toEqual({ module: "/m.so", tokenLabel: "u", pin: { env: "P" } });
    expect(() => loadHsmConfig(file, { pinEnv: "P", pinFile: "/f" })).toThrow(/only one/);
    expect(() => loadHsmConfig(undefined, { module: "/m.so", tokenLabel: "t" })).toThrow(PinSourceError);
    expect(() => loadHsmConfig(undefined, { tokenLabel: "t", pinEnv: "P" })).toThrow(/no PKCS#11 module/);
  });
});
