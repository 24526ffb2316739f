/**
 * Where the PostgreSQL password comes from (slashing-db/postgres/config.ts): a 0600 file or a systemd credential
 * ($CREDENTIALS_DIRECTORY/<name>), never the URL; anything else is refused with a message that never holds it.
 */
import fs from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";
import { tempDir } from "../helpers/tmp.js";

const dir = tempDir();
const url = "postgres://vigil@127.0.0.1:5432/vigil";

it("reads a systemd credential from $CREDENTIALS_DIRECTORY, without its final newline", () => {
  const creds = path.join(dir, "creds");
  fs.mkdirSync(creds, { recursive: true });
  fs.writeFileSync(path.join(creds, "db-password"), "s3cret-from-systemd\n", { mode: 0o600 });
  expect(toPoolConfig({ url, passwordCredential: "db-password" }, { CREDENTIALS_DIRECTORY: creds }).password).toBe("s3cret-from-systemd");
  expect(() => toPoolConfig({ url, passwordCredential: "db-password" }, {})).toThrow(/CREDENTIALS_DIRECTORY is not set.*LoadCredential=/);
  expect(() => toPoolConfig({ url, passwordCredential: "../creds/db-password" }, { CREDENTIALS_DIRECTORY: creds })).toThrow(/invalid systemd credential name/);
});

it("refuses a password file others can read, a password or query parameters in the URL, never echoing a password", () => {
  const open = path.join(dir, "open.password");
  fs.writeFileSync(open, "readable-by-all", { mode: 0o644 });
  fs.chmodSync(open, 0o644);
  expect(() => toPoolConfig({ url, passwordFile: open })).toThrow(/accessible by group or others/);
  const withPassword = (() => {
    try {
      toPoolConfig({ url: "postgres://vigil:in-the-url@127.0.0.1/vigil" });
    } catch (err) {
      return (err as Error).message;
    }
    return "accepted";
  })();
  expect(withPassword).toMatch(/must not hold a password/);
  expect(withPassword).not.toContain("in-the-url");
  expect(() => toPoolConfig({ url: `${url}?sslmode=disable` })).toThrow(/query parameters/);
});
