import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { readSecretFile, SecretFileError } from "../../common/secret-file.js";
import { WebhookSender } from "../../watchdog/alerts/webhook.js";
import { SignerAdminError, WatchdogConfigError } from "../../watchdog/errors.js";
import { SignerAdminClient } from "../../watchdog/signer-client.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-secret-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string, mode: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode); // the umask must not decide what the test checks
  return file;
}

describe("readSecretFile", () => {
  it("returns the content without the final newline", () => {
    expect(readSecretFile(write("s", "secret-value\n", 0o600), { what: "test" })).toBe("secret-value");
    expect(readSecretFile(write("r", "secret-value", 0o400), { what: "test" })).toBe("secret-value");
  });

  it.each([0o640, 0o644, 0o604, 0o660, 0o620, 0o601])("refuses a file with mode %o, naming the mode", (mode) => {
    const file = write("s", "secret-value\n", mode);
    try {
      readSecretFile(file, { what: "test secret" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SecretFileError);
      expect((err as SecretFileError).code).toBe("SECRET_FILE_INSECURE");
      expect((err as SecretFileError).exitCode).toBe(EXIT_CODES.pinSourceInsecure);
      expect((err as Error).message).toContain(`test secret file ${file} is accessible by group or others (mode 0${mode.toString(8)})`);
    }
  });

  it("refuses a missing file, a directory and an empty secret", () => {
    expect(() => readSecretFile(path.join(dir, "missing"), { what: "t" })).toThrow(expect.objectContaining({ code: "SECRET_FILE_UNREADABLE" }));
    fs.mkdirSync(path.join(dir, "d"), { mode: 0o700 });
    expect(() => readSecretFile(path.join(dir, "d"), { what: "t" })).toThrow(expect.objectContaining({ code: "SECRET_FILE_NOT_REGULAR" }));
    expect(() => readSecretFile(write("e", "\n", 0o600), { what: "t" })).toThrow(expect.objectContaining({ code: "SECRET_FILE_EMPTY" }));
  });

  it("throws the caller's error type when given one", () => {
    class MyError extends Error {}
    expect(() => readSecretFile(write("s", "x", 0o644), { what: "t", error: (r) => new MyError(r.message) })).toThrow(MyError);
  });
});

describe("the watchdog's token files are checked like the signer's", () => {
  const endpoint = (adminTokenFile: string) => ({ id: "main", urls: ["http://127.0.0.1:1"], adminTokenFile, timeoutMs: 100 });

  it("refuses a signer admin token file readable by group or others", () => {
    const file = write("admin.token", "admin-token-for-tests-0123456789\n", 0o644);
    expect(() => new SignerAdminClient(endpoint(file))).toThrow(SignerAdminError);
    expect(() => new SignerAdminClient(endpoint(file))).toThrow(/signer main: admin token file .* is accessible by group or others/);
    expect(() => new SignerAdminClient(endpoint(file))).toThrow(expect.objectContaining({ code: "ADMIN_TOKEN_UNREADABLE" }));
  });

  it("accepts a 0600 admin token file", () => {
    const file = write("admin.token", "admin-token-for-tests-0123456789\n", 0o600);
    expect(new SignerAdminClient(endpoint(file)).id).toBe("main");
  });

  it("refuses a webhook token file readable by group or others", () => {
    const file = write("hook.token", "hook-token\n", 0o640);
    expect(() => new WebhookSender({ url: "http://127.0.0.1:1/hook", timeoutMs: 100, retries: 0, tokenFile: file })).toThrow(WatchdogConfigError);
    expect(() => new WebhookSender({ url: "http://127.0.0.1:1/hook", timeoutMs: 100, retries: 0, tokenFile: file })).toThrow(/alerts\.webhook\.tokenFile/);
    new WebhookSender({ url: "http://127.0.0.1:1/hook", timeoutMs: 100, retries: 0, tokenFile: write("ok.token", "hook-token\n", 0o600) });
  });
});
