import { describe, expect, it } from "vitest";
import { SettingChecks, SettingsReader } from "../../common/settings-reader.js";
import { parseHsmSection } from "../../signer/keystore/index.js";
import { parseSignerConfig, SignerConfigError } from "../../signer/server/config.js";
import { parseWatchdogConfig } from "../../watchdog/config.js";
import { WatchdogConfigError } from "../../watchdog/errors.js";

class TestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field} ${message}`);
  }
}
const fail = (field: string, message: string) => new TestError(field, message);

describe("SettingsReader", () => {
  it("names the dotted field and raises the caller's error type", () => {
    const root = SettingsReader.of({ a: { b: { port: 70000 } } }, "", fail);
    expect(() => root.object("a").object("b").int("port", undefined, 0, 65535)).toThrow(new TestError("a.b.port", "must be an integer between 0 and 65535"));
  });

  it("rejects keys nobody read", () => {
    const root = SettingsReader.of({ known: "x", typo: 1 }, "top", fail);
    expect(root.string("known")).toBe("x");
    expect(() => root.done()).toThrow(new TestError("top.typo", "is not a known setting"));
  });

  it("falls back only when the key is absent", () => {
    const root = SettingsReader.of({ flag: "yes" }, "", fail);
    expect(root.int("n", 5, 1)).toBe(5);
    expect(() => root.bool("flag", false)).toThrow(new TestError("flag", "must be true or false"));
  });
});

describe("the three config parsers share the checks and their wording", () => {
  const checks = new SettingChecks(fail);
  it("SettingChecks words each check once", () => {
    expect(() => checks.string("", "x.y")).toThrow("x.y must be a non-empty string");
    expect(() => checks.object([], "x")).toThrow("x must be an object");
    expect(() => checks.onlyKeys({ a: 1, b: 2 }, ["a"], "x")).toThrow("x.b is not a known setting");
  });

  it("signer, watchdog and hsm section reject an unknown key with the same words", () => {
    expect(() => parseSignerConfig({ network: "mainnet", hsm: { module: "/m", tokenLabel: "t", pin: { env: "P" } }, limits: { maxWaitMS: 5 } })).toThrow(
      new SignerConfigError("limits.maxWaitMS", "is not a known setting"),
    );
    expect(() => parseWatchdogConfig({ monitor: { intervalMS: 5 } })).toThrow(WatchdogConfigError);
    expect(() => parseHsmSection({ modul: "/x" })).toThrow("config: hsm.modul is not a known setting");
  });
});
