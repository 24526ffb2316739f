/** `vigil slashing …` through the real binary: exit codes, one-line errors, files created 0600. */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/tmp.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const GVR = `0x${"55".repeat(32)}`;
const PK1 = `0x${"a1".repeat(48)}`;
const PK2 = `0x${"a2".repeat(48)}`;
const dir = tempDir();

function vigil(...args: string[]) {
  const r = spawnSync("node", [VIGIL, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeJson(name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
  return file;
}

const good = {
  metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
  data: [
    { pubkey: PK1, signed_blocks: [{ slot: "10" }, { slot: "20" }], signed_attestations: [{ source_epoch: "1", target_epoch: "2" }] },
    { pubkey: PK2, signed_blocks: [], signed_attestations: [{ source_epoch: "3", target_epoch: "4" }] },
  ],
};

describe("vigil slashing", () => {
  const db = path.join(dir, "cli.sqlite");

  it("imports, reports stats, exports (all, chosen, minified) to a 0600 file", () => {
    const imported = vigil("slashing", "import", writeJson("good.json", good), "--db", db);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/imported 2 validator\(s\): 2 block\(s\), 2 attestation\(s\)/);

    const stats = vigil("slashing", "stats", "--db", db, "--json");
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ genesisValidatorsRoot: GVR, validators: 2, blocks: 2, attestations: 2 });

    const out = path.join(dir, "export.json");
    expect(vigil("slashing", "export", "--db", db, "--out", out).code).toBe(0);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(out, "utf8"))).toEqual(good);

    const one = JSON.parse(vigil("slashing", "export", "--db", db, "--pubkey", PK2.toUpperCase().replace("0X", "0x")).stdout);
    expect(one.data.map((r: { pubkey: string }) => r.pubkey)).toEqual([PK2]);

    const minified = JSON.parse(vigil("slashing", "export", "--db", db, "--minify").stdout);
    expect(minified.data[0].signed_blocks).toEqual([{ slot: "20" }]);
  });

  it("re-importing the same file changes nothing", () => {
    const again = vigil("slashing", "import", writeJson("good.json", good), "--db", db);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 block\(s\), 0 attestation\(s\) added/);
  });

  it("malformed interchange: exit 3, one line naming the field, nothing written", () => {
    const bad = structuredClone(good);
    (bad.data[1]!.signed_attestations[0] as unknown as Record<string, unknown>).source_epoch = "three";
    const r = vigil("slashing", "import", writeJson("bad.json", bad), "--db", db);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/data\[1\]\.signed_attestations\[0\]\.source_epoch/);
  });

  it("interchange for another network: exit 4 (refused)", () => {
    const other = { ...good, metadata: { ...good.metadata, genesis_validators_root: `0x${"66".repeat(32)}` } };
    const r = vigil("slashing", "import", writeJson("other.json", other), "--db", db);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/genesis_validators_root/);
  });

  it("missing files and databases: exit 5; bad flags: exit 2", () => {
    expect(vigil("slashing", "import", path.join(dir, "nope.json"), "--db", db).code).toBe(5);
    expect(vigil("slashing", "stats", "--db", path.join(dir, "nope.sqlite")).code).toBe(5);
    expect(vigil("slashing", "prune", "--db", db, "--keep-epochs", "zero").code).toBe(2);
    expect(vigil("slashing", "frobnicate").code).toBe(2);
  });

  it("prune runs and keeps protection", () => {
    const r = vigil("slashing", "prune", "--db", db, "--keep-epochs", "1");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pruned \d+ validator/);
  });

  it("--help lists every subcommand", () => {
    const r = vigil("slashing", "--help");
    expect(r.code).toBe(0);
    for (const sub of ["import", "export", "prune", "stats"]) expect(r.stdout).toContain(sub);
  });
});
