/**
 * `vigil slashing watermark` through the real binary on both backends (a SQLite file, a private PostgreSQL
 * server): show; raise the low watermarks (never lowered); set and remove the high watermark for every key or
 * one; each change refused without --yes when no terminal can confirm it, and then nothing changed. What the
 * rules then allow is read back through the signer's own handle on the same database.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import type { SlashingDbLocation } from "../../slashing-db/index.js";
import { openHandle } from "../helpers/backend-handle.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { freshDbPath, tempDir } from "../helpers/tmp.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const GVR = `0x${"55".repeat(32)}`;
const PK1 = `0x${"a1".repeat(48)}`;
const PK2 = `0x${"a2".repeat(48)}`;
const dir = tempDir();
const interchange = path.join(dir, "history.json");
fs.writeFileSync(
  interchange,
  JSON.stringify({
    metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
    data: [
      { pubkey: PK1, signed_blocks: [{ slot: "10" }, { slot: "20" }], signed_attestations: [{ source_epoch: "1", target_epoch: "2" }] },
      { pubkey: PK2, signed_blocks: [], signed_attestations: [{ source_epoch: "3", target_epoch: "4" }] },
    ],
  }),
);

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

interface Target {
  flags: string[];
  location: SlashingDbLocation;
}

const backends: { name: string; make: () => Promise<Target> }[] = [
  {
    name: "sqlite",
    make: async () => {
      const file = freshDbPath(dir);
      return { flags: ["--db", file], location: { kind: "sqlite", path: file } };
    },
  },
  {
    name: "postgres",
    make: async () => {
      const url = await server.createDatabase();
      return {
        flags: ["--db-url", url, "--db-password-file", server.passwordFile],
        location: { kind: "postgres", connection: { url, passwordFile: server.passwordFile, poolSize: 2 } },
      };
    },
  },
];

function vigil(...args: string[]) {
  // stdin is not a terminal here: a change without --yes cannot be confirmed.
  const r = spawnSync("node", [VIGIL, ...args], { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.each(backends)("vigil slashing watermark ($name)", ({ make }) => {
  it("shows, raises the low watermarks without ever lowering them, sets and removes the high watermark; asks unless --yes", async () => {
    const t = await make();
    const wm = (...args: string[]) => vigil("slashing", "watermark", ...args, ...t.flags);
    const show = () => {
      const r = wm("show", "--json");
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { all: unknown; validators: { pubkey: string; low: Record<string, string | null>; high: unknown }[] };
    };
    // A database that is not there is not created by a change (a mistyped --db would protect nothing).
    expect(wm("set-high", "--slot", "1", "--yes").code).toBe(EXIT_CODES.notFound);
    expect(vigil("slashing", "import", interchange, ...t.flags).code).toBe(0);

    let report = show();
    expect(report.all).toBeNull();
    expect(report.validators.find((v) => v.pubkey === PK1)).toEqual({
      pubkey: PK1,
      low: { blockSlot: "10", sourceEpoch: "1", targetEpoch: "2" },
      high: null,
    });
    expect(wm("show").stdout).toMatch(/high watermark \(every key\): none/);

    // Without --yes and no terminal: refused, nothing changed.
    for (const args of [["raise", "--slot", "30"], ["set-high", "--slot", "15"], ["remove-high"]]) {
      const r = wm(...args);
      expect(r.code).toBe(EXIT_CODES.usage);
      expect(r.stderr).toMatch(/pass --yes/);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(show()).toEqual(report);
    expect(wm("set-high", "--yes").code).toBe(EXIT_CODES.usage); // neither --slot nor --epoch

    // Low: raised for one key, then an attempt to lower it leaves it.
    expect(wm("raise", "--slot", "30", "--epoch", "5", "--pubkey", PK1, "--yes").code).toBe(0);
    expect(wm("raise", "--slot", "25", "--epoch", "3", "--yes").code).toBe(0);
    report = show();
    expect(report.validators.find((v) => v.pubkey === PK1)!.low).toEqual({ blockSlot: "30", sourceEpoch: "5", targetEpoch: "5" });
    expect(report.validators.find((v) => v.pubkey === PK2)!.low).toEqual({ blockSlot: "25", sourceEpoch: "3", targetEpoch: "4" });

    // High: for every key, and a lower one for PK2.
    const set = wm("set-high", "--slot", "100", "--epoch", "12", "--yes");
    expect(set.code, set.stderr).toBe(0);
    expect(wm("set-high", "--slot", "50", "--pubkey", PK2, "--yes").code).toBe(0);
    report = show();
    expect(report.all).toEqual({ slot: "100", epoch: "12" });
    expect(report.validators.find((v) => v.pubkey === PK2)!.high).toEqual({ slot: "50", epoch: null });

    const h = await openHandle(t.location);
    try {
      expect(await h.allowsBlock(PK1, 99)).toBe(true);
      expect(await h.allowsBlock(PK1, 100)).toBe(false);
      expect(await h.allowsBlock(PK2, 50)).toBe(false);
      expect(await h.allowsAtt(PK1, 10, 11)).toBe(true);
      expect(await h.allowsAtt(PK1, 11, 12)).toBe(false);

      expect(wm("remove-high", "--pubkey", PK2, "--yes").code).toBe(0);
      expect(await h.allowsBlock(PK2, 50)).toBe(true);
      expect(await h.allowsBlock(PK2, 100)).toBe(false); // the every-key one stays
      const removed = wm("remove-high", "--yes");
      expect(removed.code).toBe(0);
      expect(removed.stdout).toMatch(/removed 1 high watermark/);
      expect(await h.allowsBlock(PK1, 100)).toBe(true);
      expect(await h.allowsAtt(PK1, 11, 12)).toBe(true);
    } finally {
      await h.close();
    }
    expect(show().all).toBeNull();
  });
});

describe.each(backends)("vigil slashing raise-watermarks, the older name of watermark raise ($name)", ({ make }) => {
  it("raises without asking (as it always did, no terminal needed), never lowers, needs --slot or --epoch", async () => {
    const t = await make();
    expect(vigil("slashing", "import", interchange, ...t.flags).code).toBe(0);
    const r = vigil("slashing", "raise-watermarks", "--slot", "30", "--epoch", "5", "--pubkey", PK1, ...t.flags);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("raised the low watermarks of 1 validator(s) (never lowered)\n");
    expect(vigil("slashing", "raise-watermarks", "--slot", "25", "--epoch", "3", ...t.flags).stdout).toMatch(/of 2 validator\(s\)/);
    expect(vigil("slashing", "raise-watermarks", ...t.flags).code).toBe(EXIT_CODES.usage);
    const report = JSON.parse(vigil("slashing", "watermark", "show", "--json", ...t.flags).stdout) as { validators: { pubkey: string; low: unknown }[] };
    expect(report.validators.find((v) => v.pubkey === PK1)!.low).toEqual({ blockSlot: "30", sourceEpoch: "5", targetEpoch: "5" });
    expect(report.validators.find((v) => v.pubkey === PK2)!.low).toEqual({ blockSlot: "25", sourceEpoch: "3", targetEpoch: "4" });
  });
});

describe("vigil slashing watermark --config <signer.json>", () => {
  // The embedded signer's config as signer/server/embedded.ts writes it: every path relative to its directory, no
  // slashingDb (the default file in dataDir "."). Run from another directory, so a path resolved against the
  // current one would miss the database.
  const embeddedStyle = (dataDir: string, extra: Record<string, unknown> = {}) => {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, "signer.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        network: "minimal-devnet",
        listen: { host: "127.0.0.1", port: 9000 },
        dataDir: ".",
        softhsmConf: "softhsm/softhsm2.conf",
        hsm: { module: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "vigil-embedded", pin: { file: "softhsm/user.pin" } },
        admin: { tokenFile: "admin.token" },
        keymanager: { enabled: false, tokenFile: "keymanager.token" },
        ...extra,
      }),
    );
    return file;
  };
  const inOtherDir = (...args: string[]) => {
    const r = spawnSync("node", [VIGIL, "slashing", "watermark", ...args], { encoding: "utf8", cwd: tempDir(), stdio: ["pipe", "pipe", "pipe"] });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it("embedded-style config: the database in its dataDir, whatever the current directory", async () => {
    const dataDir = path.join(dir, "embedded");
    const config = embeddedStyle(dataDir);
    const location: SlashingDbLocation = { kind: "sqlite", path: path.join(dataDir, "slashing-protection.sqlite") };
    expect(vigil("slashing", "import", interchange, "--db", location.path).code).toBe(0);

    const set = inOtherDir("set-high", "--slot", "40", "--epoch", "6", "--yes", "--config", config);
    expect(set.code, set.stderr).toBe(0);
    const shown = inOtherDir("show", "--json", "--config", config);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout).all).toEqual({ slot: "40", epoch: "6" });
    expect(inOtherDir("raise", "--slot", "30", "--pubkey", PK1, "--yes", "--config", config).code).toBe(0);
    const h = await openHandle(location);
    try {
      expect(await h.allowsBlock(PK1, 31)).toBe(true);
      expect(await h.allowsBlock(PK1, 30)).toBe(false); // the raised low watermark
      expect(await h.allowsBlock(PK2, 40)).toBe(false); // the high watermark
      expect(inOtherDir("remove-high", "--yes", "--config", config).code).toBe(0);
      expect(await h.allowsBlock(PK2, 40)).toBe(true);
    } finally {
      await h.close();
    }
    // Nothing was created where a cwd-relative resolution would have looked.
    expect(fs.existsSync(path.join(process.cwd(), "slashing-protection.sqlite"))).toBe(false);
  });

  it("import, export, stats and prune take --config too: the same database, whatever the current directory", () => {
    const dataDir = path.join(dir, "embedded-other-commands");
    const config = embeddedStyle(dataDir);
    const slashing = (...args: string[]) => {
      const r = spawnSync("node", [VIGIL, "slashing", ...args], { encoding: "utf8", cwd: tempDir(), stdio: ["pipe", "pipe", "pipe"] });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const imported = slashing("import", interchange, "--config", config);
    expect(imported.code, imported.stderr).toBe(0);
    expect(fs.existsSync(path.join(dataDir, "slashing-protection.sqlite"))).toBe(true);
    const stats = slashing("stats", "--json", "--config", config);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ backend: "sqlite", path: path.join(dataDir, "slashing-protection.sqlite"), validators: 2 });
    const exported = slashing("export", "--config", config);
    expect(exported.code, exported.stderr).toBe(0);
    expect(
      JSON.parse(exported.stdout)
        .data.map((d: { pubkey: string }) => d.pubkey)
        .sort(),
    ).toEqual([PK1, PK2].sort());
    expect(slashing("prune", "--config", config).code).toBe(0);
    expect(slashing("stats", "--config", config, "--db", path.join(dir, "x.sqlite")).code).toBe(EXIT_CODES.usage);
  });

  it("a PostgreSQL slashingDb in the config, its passwordFile relative to the config", async () => {
    const url = await server.createDatabase();
    const dataDir = path.join(dir, "pg-config");
    fs.mkdirSync(dataDir, { recursive: true });
    fs.copyFileSync(server.passwordFile, path.join(dataDir, "db.password"));
    fs.chmodSync(path.join(dataDir, "db.password"), 0o600);
    const config = embeddedStyle(dataDir, { slashingDb: { postgres: { url, passwordFile: "db.password" } } });
    expect(vigil("slashing", "import", interchange, "--db-url", url, "--db-password-file", server.passwordFile).code).toBe(0);
    const set = inOtherDir("set-high", "--slot", "15", "--yes", "--config", config);
    expect(set.code, set.stderr).toBe(0);
    const h = await openHandle({ kind: "postgres", connection: { url, passwordFile: server.passwordFile, poolSize: 2 } });
    try {
      expect(await h.allowsBlock(PK2, 14)).toBe(true);
      expect(await h.allowsBlock(PK2, 15)).toBe(false);
    } finally {
      await h.close();
    }
  });

  it("refuses --config with --db/--db-url (exit 2), an unreadable config (5) and an invalid one (3), changing nothing", async () => {
    const config = embeddedStyle(path.join(dir, "refusals"));
    const both = inOtherDir("set-high", "--slot", "1", "--yes", "--config", config, "--db", path.join(dir, "x.sqlite"));
    expect(both.code).toBe(EXIT_CODES.usage);
    expect(both.stderr).toMatch(/--config .* or --db\/--db-url, not both/);
    expect(inOtherDir("show", "--config", path.join(dir, "no-such.json")).code).toBe(EXIT_CODES.notFound);
    const bad = embeddedStyle(path.join(dir, "bad"), { slashingDb: { mysql: {} } });
    const r = inOtherDir("show", "--config", bad);
    expect(r.code).toBe(EXIT_CODES.invalidInput);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(fs.existsSync(path.join(dir, "x.sqlite"))).toBe(false);
    expect(inOtherDir("show", "--help").stdout).toMatch(/--config <file>/);
  });
});
