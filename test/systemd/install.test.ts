// systemd/install.sh into a scratch root (--root): users, owners and modes, the release and its symlink,
// units, example configs and credentials; then again, to show it is idempotent and keeps the operator's files.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const INSTALL = path.join(ROOT, "systemd/install.sh");
const isRoot = process.getuid?.() === 0;
const built = fs.existsSync(path.join(ROOT, "dist/cli/main.js"));
const skip = !isRoot ? "install.sh needs root (it creates users and sets owners)" : !built ? "the checkout is not built (dist/)" : undefined;
if (skip) console.warn(`SKIPPING install.sh tests: ${skip}`);

describe.skipIf(skip !== undefined)("systemd/install.sh", () => {
  let target: string;
  let first: string;
  const p = (rel: string) => path.join(target, rel);
  const stat = (rel: string) => fs.statSync(p(rel));
  const mode = (rel: string) => (stat(rel).mode & 0o7777).toString(8).padStart(4, "0");
  const idOf = (file: "passwd" | "group", name: string) => {
    const line = fs
      .readFileSync(p(`etc/${file}`), "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${name}:`));
    if (!line) throw new Error(`${name} not in ${file}`);
    return Number(line.split(":")[2]);
  };
  // As on a machine that has never seen the project: an empty npm cache and no registry to ask.
  const npmCache = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-install-npm-cache-"));
  const freshMachineEnv = { ...process.env, npm_config_cache: npmCache, npm_config_registry: "http://127.0.0.1:9/", npm_config_offline: "true" };
  const install = () => {
    const r = spawnSync("bash", [INSTALL, "--root", target], { encoding: "utf8", timeout: 120_000, env: freshMachineEnv });
    if (r.status !== 0) throw new Error(`install.sh exited ${r.status}: ${r.stderr}\n${r.stdout}`);
    return r.stdout;
  };

  beforeAll(() => {
    target = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-install-"));
    fs.mkdirSync(p("etc"));
    for (const f of ["passwd", "group", "shadow", "gshadow"]) fs.writeFileSync(p(`etc/${f}`), "", { mode: f.includes("shadow") ? 0o600 : 0o644 });
    first = install();
  }, 180_000);
  afterAll(() => {
    fs.rmSync(target, { recursive: true, force: true });
    fs.rmSync(npmCache, { recursive: true, force: true });
  });

  it("creates two system users without a login shell, homed in their state directories", () => {
    const passwd = fs.readFileSync(p("etc/passwd"), "utf8");
    expect(passwd).toMatch(/^vigil-signer:x:\d+:\d+:[^:]*:\/var\/lib\/vigil\/signer:\/usr\/sbin\/nologin$/m);
    expect(passwd).toMatch(/^vigil-watchdog:x:\d+:\d+:[^:]*:\/var\/lib\/vigil\/watchdog:\/usr\/sbin\/nologin$/m);
    expect(idOf("passwd", "vigil-signer")).toBeLessThan(1000);
  });

  it("sets owners and modes: secrets root-only, state per service user, code read-only", () => {
    const signer = idOf("passwd", "vigil-signer");
    const watchdog = idOf("passwd", "vigil-watchdog");
    expect([mode("etc/vigil/credentials"), stat("etc/vigil/credentials").uid]).toEqual(["0700", 0]);
    expect([mode("etc/vigil/credentials/admin-token"), stat("etc/vigil/credentials/admin-token").uid]).toEqual(["0600", 0]);
    expect(fs.readFileSync(p("etc/vigil/credentials/admin-token"), "utf8")).toMatch(/^[0-9a-f]{64}\n$/);
    expect(fs.existsSync(p("etc/vigil/credentials/hsm-pin"))).toBe(false); // the operator's to set
    for (const dir of ["var/lib/vigil/signer", "var/lib/vigil/signer/softhsm/tokens"]) expect([mode(dir), stat(dir).uid], dir).toEqual(["0700", signer]);
    expect([mode("var/lib/vigil/watchdog"), stat("var/lib/vigil/watchdog").uid]).toEqual(["0700", watchdog]);
    expect([mode("etc/vigil/signer.json"), stat("etc/vigil/signer.json").gid]).toEqual(["0640", idOf("group", "vigil-signer")]);
    expect([mode("etc/vigil/watchdog.json"), stat("etc/vigil/watchdog.json").gid]).toEqual(["0640", idOf("group", "vigil-watchdog")]);
    expect(mode("etc/vigil/signer.json.example")).toBe("0644");
    // nothing under the release is writable by anyone but root
    const writable = execFileSync("find", [p("opt/vigil/releases"), "!", "-type", "l", "(", "-perm", "/022", "-o", "!", "-uid", "0", ")"], {
      encoding: "utf8",
    }).trim();
    expect(writable).toBe("");
  });

  it("installs a runnable release behind /opt/vigil/current, without tests or dev tools", () => {
    const current = fs.readlinkSync(p("opt/vigil/current"));
    expect(current).toMatch(/^releases\/0\.1\.0-/);
    const rel = p(path.join("opt/vigil", current));
    expect(fs.existsSync(path.join(rel, "dist/cli/main.js"))).toBe(true);
    expect(fs.existsSync(path.join(rel, "dist/test"))).toBe(false);
    expect(fs.existsSync(path.join(rel, "node_modules/vitest"))).toBe(false);
    // The release holds its own copy (never a link into the checkout), with no dev-only package at all …
    expect(fs.lstatSync(path.join(rel, "node_modules")).isDirectory()).toBe(true);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages)
      .filter(([key, e]) => key.startsWith("node_modules/") && e.dev)
      .map(([key]) => key);
    expect(devOnly.length).toBeGreaterThan(50); // vitest, typescript, @types/node and what they pull in
    expect(devOnly.filter((key) => fs.existsSync(path.join(rel, key)))).toEqual([]);
    expect(execFileSync("find", [path.join(rel, "node_modules"), "-xtype", "l"], { encoding: "utf8" }).trim()).toBe(""); // no dangling .bin links
    // … and every production dependency loads from it (native addons included).
    const deps = Object.keys((JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);
    const load = `for (const d of ${JSON.stringify(deps)}) await import(d); console.log("loaded")`;
    expect(execFileSync(process.execPath, ["--input-type=module", "-e", load], { cwd: rel, encoding: "utf8" }).trim()).toBe("loaded");
    const version = execFileSync(process.execPath, [path.join(rel, "bin/vigil.js"), "--version"], { encoding: "utf8" }).trim();
    expect(version).toBe("0.1.0");
  });

  it("installs the units, the admin wrapper and the polkit rule", () => {
    for (const unit of [
      "vigil-signer.service",
      "vigil-signer@.service",
      "vigil-watchdog.service",
      "vigil-slashing-prune.service",
      "vigil-slashing-prune.timer",
    ]) {
      expect(fs.readFileSync(p(`usr/local/lib/systemd/system/${unit}`), "utf8")).toBe(fs.readFileSync(path.join(ROOT, "systemd", unit), "utf8"));
      expect(mode(`usr/local/lib/systemd/system/${unit}`)).toBe("0644");
    }
    expect(mode("usr/local/sbin/vigil-signer-admin")).toBe("0755");
    expect(fs.existsSync(p("etc/polkit-1/rules.d/50-vigil-watchdog.rules"))).toBe(true);
    expect(first).toMatch(/Edit before the first start:/);
    expect(first).toMatch(/\/etc\/vigil\/credentials\/hsm-pin/);
  });

  it("is idempotent, keeps the operator's config and secrets, and repairs modes", () => {
    const edited = fs.readFileSync(p("etc/vigil/signer.json"), "utf8").replace('"logLevel": "info"', '"logLevel": "debug"');
    fs.writeFileSync(p("etc/vigil/signer.json"), edited);
    fs.writeFileSync(p("etc/vigil/credentials/hsm-pin"), "1234\n", { mode: 0o644 });
    fs.chmodSync(p("var/lib/vigil/signer"), 0o755);
    const token = fs.readFileSync(p("etc/vigil/credentials/admin-token"), "utf8");
    const current = fs.readlinkSync(p("opt/vigil/current"));
    const passwd = fs.readFileSync(p("etc/passwd"), "utf8");

    const second = install();
    expect(second).toMatch(/already installed, unchanged/);
    expect(second).not.toMatch(/created user/);
    expect(second).toMatch(/kept \/etc\/vigil\/signer\.json \(differs from signer\.json\.example/);
    expect(fs.readFileSync(p("etc/vigil/signer.json"), "utf8")).toBe(edited);
    expect(fs.readFileSync(p("etc/vigil/credentials/admin-token"), "utf8")).toBe(token);
    expect(mode("etc/vigil/credentials/hsm-pin")).toBe("0600");
    expect(mode("var/lib/vigil/signer")).toBe("0700");
    expect(fs.readlinkSync(p("opt/vigil/current"))).toBe(current);
    expect(fs.existsSync(p("opt/vigil/previous"))).toBe(false);
    expect(fs.readFileSync(p("etc/passwd"), "utf8")).toBe(passwd);
    expect(fs.readdirSync(p("opt/vigil/releases")).filter((n) => n.startsWith("."))).toEqual([]); // no staging left
  });

  it("rolls back to the previous release, and refuses when there is none", () => {
    const none = spawnSync("bash", [INSTALL, "--root", target, "--rollback"], { encoding: "utf8" });
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/no previous release/);

    const current = fs.readlinkSync(p("opt/vigil/current"));
    // an older release, as an earlier install would have left it
    execFileSync("cp", ["-a", p(path.join("opt/vigil", current)), p("opt/vigil/releases/0.0.9-older")]);
    fs.symlinkSync("releases/0.0.9-older", p("opt/vigil/previous"));
    const r = spawnSync("bash", [INSTALL, "--root", target, "--rollback"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readlinkSync(p("opt/vigil/current"))).toBe("releases/0.0.9-older");
    expect(fs.readlinkSync(p("opt/vigil/previous"))).toBe(current);
    expect(r.stdout).toMatch(/systemctl restart vigil-signer/);
  });
});
