// vigil-signer-admin hands the command to systemd-run with the signer's credentials: here systemd-run is a
// stand-in on PATH that records its arguments, so the test sees exactly what would be asked of systemd.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { PASSWORD_FILE_ENV } from "../../cli/slashing-location.js";
import { tempDir } from "../helpers/tmp.js";

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../systemd/vigil-signer-admin");
const isRoot = process.getuid?.() === 0;
const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const bin = path.join(dir, "bin");
fs.mkdirSync(bin);
fs.writeFileSync(path.join(bin, "systemd-run"), `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\n`, { mode: 0o755 });

function run(credentials: string): string[] {
  fs.rmSync(path.join(dir, "args"), { force: true });
  const r = spawnSync("bash", [SCRIPT, "vigil", "keys", "delete", "0xab", "--yes"], {
    encoding: "utf8",
    env: { PATH: `${bin}:${process.env.PATH}`, VIGIL_CREDENTIALS_DIR: credentials },
  });
  expect(r.status, r.stderr).toBe(0);
  return fs.readFileSync(path.join(dir, "args"), "utf8").trimEnd().split("\n");
}

/** The values of every `-p NAME=…` property. */
const props = (args: string[], name: string) => args.flatMap((a, i) => (args[i - 1] === "-p" && a.startsWith(`${name}=`) ? [a.slice(name.length + 1)] : []));

describe.skipIf(!isRoot)("vigil-signer-admin (runs as root)", () => {
  it("hands over the PostgreSQL password as the credential db-password, and points VIGIL_DB_PASSWORD_FILE at it", () => {
    const credentials = path.join(dir, "with-db");
    fs.mkdirSync(credentials);
    for (const f of ["hsm-pin", "db-password"]) fs.writeFileSync(path.join(credentials, f), "secret\n", { mode: 0o600 });
    const args = run(credentials);
    const unit = args.find((a) => a.startsWith("--unit="))?.slice("--unit=".length);
    expect(unit).toMatch(/^vigil-signer-admin-\d+\.service$/);
    expect(props(args, "LoadCredential")).toEqual([`hsm-pin:${credentials}/hsm-pin`, `db-password:${credentials}/db-password`]);
    // systemd puts a unit's credentials in /run/credentials/<unit>: the path the CLI is told
    expect(props(args, "Environment")).toContain(`${PASSWORD_FILE_ENV}=/run/credentials/${unit}/db-password`);
    expect(args.slice(args.indexOf("--") + 1)).toEqual([
      "/opt/vigil/current/bin/vigil.js",
      "keys",
      "delete",
      "0xab",
      "--yes",
      "--config",
      "/etc/vigil/signer.json",
    ]);
    expect(args.join("\n")).not.toContain("secret");
  });

  it("without a db-password file (SQLite), no such credential and no variable", () => {
    const credentials = path.join(dir, "sqlite-only");
    fs.mkdirSync(credentials);
    fs.writeFileSync(path.join(credentials, "hsm-pin"), "secret\n", { mode: 0o600 });
    const args = run(credentials);
    expect(props(args, "LoadCredential")).toEqual([`hsm-pin:${credentials}/hsm-pin`]);
    expect(props(args, "Environment").filter((e) => e.startsWith(PASSWORD_FILE_ENV))).toEqual([]);
  });
});
