// The shipped systemd units: `systemd-analyze verify` is clean, `systemd-analyze security` rates each at most
// 2.5 ("OK"), and the units, example configs and install layout agree with each other.
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { PASSWORD_FILE_ENV } from "../../cli/slashing-location.js";
import { EXIT_CODES } from "../../common/index.js";
import { parseSignerConfig } from "../../signer/server/config.js";
import { parseWatchdogConfig } from "../../watchdog/config.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const UNIT_DIR = path.join(ROOT, "systemd");
const SERVICES = ["vigil-signer.service", "vigil-signer@.service", "vigil-watchdog.service", "vigil-slashing-prune.service"];
const UNITS = [...SERVICES, "vigil-slashing-prune.timer"];
const MAX_EXPOSURE = 2.5;

const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
const analyzeMissing =
  analyze.status === 0
    ? undefined
    : `systemd-analyze is not available (${analyze.error?.message ?? analyze.stderr.trim()}); install the Debian package "systemd"`;
if (analyzeMissing) console.warn(`SKIPPING systemd-analyze checks: ${analyzeMissing}`);
const systemdVersion = Number(/systemd (\d+)/.exec(analyze.stdout ?? "")?.[1] ?? 0);

/** The unit an example drop-in is for, by its name's prefix. */
function dropinUnit(dropin: string): string | undefined {
  if (dropin.startsWith("signer-")) return "vigil-signer.service";
  if (dropin.startsWith("prune-")) return "vigil-slashing-prune.service";
  return undefined;
}

function unitText(name: string): string {
  return fs.readFileSync(path.join(UNIT_DIR, name), "utf8");
}

/** Every value of `key=` in a unit (a key may repeat). */
function values(text: string, key: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

describe.skipIf(analyzeMissing !== undefined)("systemd-analyze", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-units-"));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /**
   * verify checks that ExecStart= exists and that every dependency resolves, so it runs against a small root
   * laid out as install.sh does it: the system's own units, ours in /usr/local/lib/systemd/system, and a
   * stand-in for /opt/vigil/current/bin/vigil.js.
   */
  function fakeRoot(units: Record<string, string>, dropins: Record<string, string> = {}): string {
    const root = fs.mkdtempSync(path.join(tmp, "root-"));
    const systemUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => fs.existsSync(path.join(d, "multi-user.target")));
    if (!systemUnits) throw new Error("no system unit directory with multi-user.target");
    fs.mkdirSync(path.join(root, "usr/lib/systemd"), { recursive: true });
    execFileSync("cp", ["-a", systemUnits, path.join(root, "usr/lib/systemd/system")]);
    const ours = path.join(root, "usr/local/lib/systemd/system");
    fs.mkdirSync(ours, { recursive: true });
    for (const [name, text] of Object.entries(units)) fs.writeFileSync(path.join(ours, name), text);
    for (const [rel, text] of Object.entries(dropins)) {
      fs.mkdirSync(path.dirname(path.join(root, "etc/systemd/system", rel)), { recursive: true });
      fs.writeFileSync(path.join(root, "etc/systemd/system", rel), text);
    }
    const bin = path.join(root, "opt/vigil/current/bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, "vigil.js"), "#!/bin/sh\n", { mode: 0o755 });
    // ExecReload= (procps's kill on a real host).
    fs.mkdirSync(path.join(root, "bin"), { recursive: true });
    fs.writeFileSync(path.join(root, "bin/kill"), "#!/bin/sh\n", { mode: 0o755 });
    return root;
  }

  function verify(root: string, names: string[]) {
    return spawnSync("systemd-analyze", ["verify", "--man=no", `--root=${root}`, ...names.map((n) => `/usr/local/lib/systemd/system/${n}`)], {
      encoding: "utf8",
      env: { ...process.env, SYSTEMD_LOG_LEVEL: "notice" },
    });
  }

  it("verify passes on every unit, with no warning at all", () => {
    const root = fakeRoot(Object.fromEntries(UNITS.map((u) => [u, unitText(u)])));
    const r = verify(root, UNITS);
    expect(r.stderr.trim()).toBe("");
    expect(r.status).toBe(0);
  });

  it("verify passes on an instance of the signer template (vigil-signer@1), and sees a mistake in the template", () => {
    const good = fakeRoot({ "vigil-signer@.service": unitText("vigil-signer@.service") });
    const r = verify(good, ["vigil-signer@1.service"]);
    expect(r.stderr.trim()).toBe("");
    expect(r.status).toBe(0);
    const broken = unitText("vigil-signer@.service").replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSytem=yes");
    const bad = verify(fakeRoot({ "vigil-signer@.service": broken }), ["vigil-signer@1.service"]);
    expect(bad.stderr).toMatch(/Unknown key (name )?'ProtectSytem'/);
  });

  it("verify would catch a broken unit (the check is not vacuous)", () => {
    const broken = unitText("vigil-signer.service").replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSytem=yes");
    const missingExec = unitText("vigil-watchdog.service").replace("/opt/vigil/current/bin/vigil.js", "/opt/vigil/missing/vigil.js");
    const root = fakeRoot({ "vigil-signer.service": broken, "vigil-watchdog.service": missingExec });
    const r = verify(root, ["vigil-signer.service", "vigil-watchdog.service"]);
    expect(r.stderr).toMatch(/Unknown key (name )?'ProtectSytem'/);
    expect(r.stderr).toMatch(/missing\/vigil\.js is not executable/);
    expect(r.status).not.toBe(0);
  });

  const DROPINS = fs.readdirSync(path.join(UNIT_DIR, "dropins")).filter((f) => f.endsWith(".conf"));

  it("every example drop-in names the unit it is for (signer-*, prune-*)", () => {
    for (const dropin of DROPINS) expect(dropinUnit(dropin), dropin).toBeDefined();
  });

  it.each(DROPINS)("the example drop-in %s keeps its unit valid and rated OK", (dropin) => {
    const unit = dropinUnit(dropin)!;
    const root = fakeRoot({ [unit]: unitText(unit) }, { [`${unit}.d/${dropin}`]: unitText(`dropins/${dropin}`) });
    const r = verify(root, [unit]);
    expect(r.stderr.trim()).toBe("");
    expect(r.status).toBe(0);
    const sec = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", `--root=${root}`, unit], { encoding: "utf8" });
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(sec.stdout);
    expect(m, sec.stdout + sec.stderr).not.toBeNull();
    console.log(`systemd-analyze security ${unit} + ${dropin}: ${m![1]}`);
    expect(Number(m![1])).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it("verify sees a drop-in's mistakes (the drop-in check is not vacuous)", () => {
    const unit = "vigil-slashing-prune.service";
    const broken = unitText("dropins/prune-postgres.conf").replace("LoadCredential=", "LoadCredentail=");
    const root = fakeRoot({ [unit]: unitText(unit) }, { [`${unit}.d/prune-postgres.conf`]: broken });
    const r = verify(root, [unit]);
    expect(r.stderr).toMatch(/Unknown key (name )?'LoadCredentail'/);
  });

  it.each(SERVICES)(`security rates %s at most ${MAX_EXPOSURE} ("OK")`, (unit) => {
    if (systemdVersion < 250) throw new Error(`systemd-analyze ${systemdVersion} has no --offline security review (needs 250+)`);
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", path.join(UNIT_DIR, unit)], { encoding: "utf8" });
    const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?) (\S+)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    const score = Number(m![1]);
    console.log(`systemd-analyze security ${unit}: ${score} ${m![2]}`);
    expect(score).toBeLessThanOrEqual(MAX_EXPOSURE);
  });
});

describe("units, example configs and install layout agree", () => {
  const signerUnit = unitText("vigil-signer.service");
  const watchdogUnit = unitText("vigil-watchdog.service");

  it("both daemons are Type=notify with a watchdog, restart on failure with limits, and run as their own user", () => {
    for (const [text, user] of [
      [signerUnit, "vigil-signer"],
      [watchdogUnit, "vigil-watchdog"],
    ] as const) {
      expect(values(text, "Type")).toEqual(["notify"]);
      expect(values(text, "NotifyAccess")).toEqual(["main"]);
      expect(values(text, "WatchdogSec")).toHaveLength(1);
      expect(values(text, "Restart")).toEqual(["on-failure"]);
      expect(values(text, "StartLimitBurst")).toHaveLength(1);
      expect(values(text, "StartLimitIntervalSec")).toHaveLength(1);
      expect(values(text, "User")).toEqual([user]);
      expect(values(text, "CapabilityBoundingSet")).toEqual([""]);
      expect(values(text, "SystemCallFilter")[0]).toBe("@system-service");
      for (const key of ["ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges", "RestrictAddressFamilies", "StateDirectory"]) {
        expect(values(text, key), key).toHaveLength(1);
      }
    }
  });

  it("no service may dump core (keys, PINs and tokens live in memory), and the signer never swaps", () => {
    for (const unit of SERVICES) expect(values(unitText(unit), "LimitCORE"), unit).toEqual(["0"]);
    expect(values(signerUnit, "MemorySwapMax")).toEqual(["0"]);
  });

  it("the signer config reads the PIN and admin token from the credentials the unit loads", () => {
    const config = parseSignerConfig(JSON.parse(fs.readFileSync(path.join(UNIT_DIR, "etc/signer.json"), "utf8")), "/etc/vigil");
    const credentials = values(signerUnit, "LoadCredential").map((v) => v.split(":")[0]);
    expect(config.hsm.pin).toEqual({ credential: "hsm-pin" });
    expect(credentials).toContain("hsm-pin");
    expect(config.admin?.tokenFile).toBe("/run/credentials/vigil-signer.service/admin-token");
    expect(credentials).toContain("admin-token");
    expect(config.dataDir).toBe("/var/lib/vigil/signer");
    expect(values(signerUnit, "StateDirectory")).toEqual(["vigil/signer"]);
    expect(values(signerUnit, "Environment")).toContain("VIGIL_DATA_DIR=/var/lib/vigil/signer");
    expect(values(signerUnit, "ExecStart")[0]).toMatch(/ signer start --config \/etc\/vigil\/signer\.json$/);
    // the default listen addresses are loopback, which the unit's IP allow list permits
    expect([config.listen.host, ...(config.clients ?? []).map((c) => c.listen?.host)]).toEqual(expect.arrayContaining(["127.0.0.1"]));
    expect(values(signerUnit, "IPAddressAllow")).toEqual(["localhost"]);
  });

  it("the signer template is vigil-signer.service with only the instance's config, data directory and description changed", () => {
    const template = unitText("vigil-signer@.service");
    const settings = (text: string) => text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    const changed = (a: string[], b: string[]) => a.filter((l) => !b.includes(l));
    expect(changed(settings(template), settings(signerUnit)).sort()).toEqual(
      [
        "Description=Vigil remote signer instance %i (Web3Signer API, slashing protection, HSM-held keys)",
        "ExecStart=/opt/vigil/current/bin/vigil.js signer start --config /etc/vigil/signer-%i.json",
        "Environment=VIGIL_DATA_DIR=/var/lib/vigil/signer-%i",
        // its own dataDir, and the shared one where SoftHSM2 keeps the token all instances use
        "StateDirectory=vigil/signer-%i vigil/signer",
      ].sort(),
    );
    expect(changed(settings(signerUnit), settings(template))).toHaveLength(4);
  });

  it("SoftHSM2 keeps its tokens inside the signer's state directory", () => {
    const conf = fs.readFileSync(path.join(UNIT_DIR, "etc/softhsm2.conf"), "utf8");
    expect(/^directories\.tokendir = (.+)$/m.exec(conf)?.[1]).toBe("/var/lib/vigil/signer/softhsm/tokens");
    expect(values(signerUnit, "Environment")).toContain("SOFTHSM2_CONF=/etc/vigil/softhsm2.conf");
  });

  it("the watchdog config reads the admin token from the credential its unit loads", () => {
    const config = parseWatchdogConfig(JSON.parse(fs.readFileSync(path.join(UNIT_DIR, "etc/watchdog.json"), "utf8")), "/etc/vigil");
    for (const signer of Object.values(config.signers)) {
      expect(signer.adminTokenFile).toBe("/run/credentials/vigil-watchdog.service/admin-token");
    }
    expect(values(watchdogUnit, "LoadCredential")).toEqual(["admin-token:/etc/vigil/credentials/admin-token"]);
    expect(config.dataDir).toBe("/var/lib/vigil/watchdog");
    expect(values(watchdogUnit, "StateDirectory")).toEqual(["vigil/watchdog"]);
    expect(values(watchdogUnit, "ExecStart")[0]).toMatch(/ watchdog start --config \/etc\/vigil\/watchdog\.json$/);
  });

  describe("PostgreSQL drop-ins", () => {
    const signerDropin = unitText("dropins/signer-postgres.conf");
    const pruneDropin = unitText("dropins/prune-postgres.conf");
    /** The `"slashingDb": {…}` line the signer drop-in's comment tells the operator to put in signer.json. */
    const snippet = JSON.parse(`{${/^#\s+("slashingDb": \{.*\})$/m.exec(signerDropin)?.[1]}}`) as { slashingDb: unknown };
    const base = JSON.parse(fs.readFileSync(path.join(UNIT_DIR, "etc/signer.json"), "utf8"));
    const config = parseSignerConfig({ ...base, slashingDb: snippet.slashingDb }, "/etc/vigil");
    const location = config.slashingDb;
    if (location.kind !== "postgres") throw new Error("the signer drop-in's config snippet is not a PostgreSQL location");
    const credentials = (text: string) => new Map(values(text, "LoadCredential").map((v) => v.split(":") as [string, string]));

    it("the config line in the signer drop-in parses, and names the credential the drop-in loads", () => {
      const name = location.connection.passwordCredential!;
      expect(name).toBe("db-password");
      expect(credentials(signerDropin).get(name)).toBe("/etc/vigil/credentials/db-password");
      // the unit allows only localhost: the drop-in must allow the server the config points at
      expect(values(signerDropin, "IPAddressAllow")).toEqual([new URL(location.connection.url).hostname]);
    });

    it("the PostgreSQL example config names the credential the signer drop-in loads", () => {
      const example = JSON.parse(fs.readFileSync(path.join(ROOT, "examples/signer.postgres.example.json"), "utf8"));
      const parsed = parseSignerConfig(example, path.join(ROOT, "examples")).slashingDb;
      if (parsed.kind !== "postgres") throw new Error("the PostgreSQL example config is not a PostgreSQL location");
      expect(credentials(signerDropin).has(parsed.connection.passwordCredential!)).toBe(true);
    });

    it("a PostgreSQL outage never stops the signer: no Wants=/Requires=/BindsTo= on a database unit; 40 is retried, 41-44 are not", () => {
      for (const text of [signerDropin, pruneDropin]) {
        for (const key of ["Wants", "Requires", "Requisite", "BindsTo", "PartOf"]) expect(values(text, key), key).toEqual([]);
      }
      const prevented = values(signerDropin, "RestartPreventExitStatus").flatMap((v) => v.split(/\s+/).map(Number));
      expect(prevented.sort()).toEqual([EXIT_CODES.dbAuthFailed, EXIT_CODES.dbNetworkMismatch, EXIT_CODES.dbSchemaTooNew, EXIT_CODES.dbNotDurable].sort());
      expect(values(signerUnit, "RestartPreventExitStatus").join(" ").split(/\s+/)).not.toContain(String(EXIT_CODES.dbUnreachable));
    });

    it("the prune drop-in replaces the SQLite command with the same prune on the signer's database, password via the credential", () => {
      const unit = unitText("vigil-slashing-prune.service");
      const [reset, command, ...more] = values(pruneDropin, "ExecStart");
      expect(reset).toBe(""); // without it a oneshot unit would run both commands
      expect(more).toEqual([]);
      const args = command!.split(" ");
      const url = args[args.indexOf("--db-url") + 1];
      expect(url).toBe(location.connection.url);
      // the same prune as the unit's own command, only pointed elsewhere
      expect(args.filter((a, i) => a !== "--db-url" && args[i - 1] !== "--db-url")).toEqual(values(unit, "ExecStart")[0]!.split(" "));
      expect(credentials(pruneDropin)).toEqual(credentials(signerDropin));
      expect(values(pruneDropin, "Environment")).toEqual([`${PASSWORD_FILE_ENV}=%d/db-password`]);
      // the unit denies all network; the drop-in opens exactly IP to the server
      expect(values(pruneDropin, "PrivateNetwork")).toEqual(["false"]);
      expect(values(pruneDropin, "RestrictAddressFamilies")).toEqual(["", "AF_UNIX AF_INET AF_INET6"]);
      expect(values(pruneDropin, "IPAddressAllow")).toEqual([new URL(url!).hostname]);
    });
  });

  it("the shell scripts parse", () => {
    for (const script of ["install.sh", "vigil-signer-admin"]) {
      const r = spawnSync("bash", ["-n", path.join(UNIT_DIR, script)], { encoding: "utf8" });
      expect(r.stderr, script).toBe("");
      expect(fs.statSync(path.join(UNIT_DIR, script)).mode & 0o111, `${script} is executable`).not.toBe(0);
    }
  });
});
