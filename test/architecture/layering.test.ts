// The layering rule (README "Layout"): `cli/` sits above the parts and no part imports it; a part imports
// another part only through its public `index.ts`; `common/` (shared primitives) and `admin-api/` (the signer's
// admin contract, shared by signer, watchdog and tests) import no part. Checked
// on every import and re-export, static or dynamic, of the source tree, so it stays true. Tests may
// import internals: test/ is not checked.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PARTS = ["signer", "slashing-db", "watchdog", "common", "admin-api"] as const;
/** Depended on by the parts, so they depend on none. */
const LEAVES = ["common", "admin-api"];
const CLI = "cli";
const CHECKED = [...PARTS, CLI];

interface Import {
  /** repo-relative file:line of the import, for the message */
  at: string;
  from: string;
  /** repo-relative path the specifier resolves to (.js → .ts) */
  to: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(rel));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

/** Every relative import of `file` (import/export … from, import "…", import("…")), with its line. */
function importsOf(file: string): Import[] {
  const text = fs.readFileSync(path.join(ROOT, file), "utf8");
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles
    .filter((f) => f.fileName.startsWith("."))
    .map((f) => {
      const line = text.slice(0, f.pos).split("\n").length;
      const to = path.posix.normalize(path.posix.join(path.posix.dirname(file), f.fileName)).replace(/\.js$/, ".ts");
      return { at: `${file}:${line}`, from: file, to };
    });
}

const topDir = (p: string): string => p.split("/")[0]!;
const isIndexOf = (p: string, part: string): boolean => p === `${part}/index.ts`;

/** The rule broken by one import, or undefined. */
function violation(imp: Import): string | undefined {
  const from = topDir(imp.from);
  const to = topDir(imp.to);
  if (imp.to.startsWith("..") || to === "node_modules") return undefined;
  if (from === to) return undefined;
  if (to === "test") return `${from}/ imports the tests (${imp.to})`;
  if (to === CLI) return `part ${from}/ imports the CLI (${imp.to}): the CLI sits above the parts`;
  if (LEAVES.includes(from) && (PARTS as readonly string[]).includes(to))
    return `${from}/ imports part ${to}/ (${imp.to}): ${from}/ is shared by the parts and imports none`;
  if ((PARTS as readonly string[]).includes(to) && !isIndexOf(imp.to, to))
    return `${from}/ imports ${imp.to}: another part is imported only through ${to}/index.ts`;
  return undefined;
}

describe("layering", () => {
  const imports = CHECKED.flatMap(sourceFiles).flatMap(importsOf);

  it("finds the imports it checks", () => {
    // Guards the parser: the CLI reaches every part through its index, so these imports must be seen.
    const targets = new Set(imports.filter((i) => topDir(i.from) === CLI).map((i) => i.to));
    for (const part of PARTS.filter((p) => p !== "admin-api")) expect(targets, `cli/ imports ${part}/index.ts`).toContain(`${part}/index.ts`);
    const contractUsers = new Set(imports.filter((i) => i.to === "admin-api/index.ts").map((i) => topDir(i.from)));
    expect([...contractUsers].sort()).toEqual(["signer", "watchdog"]);
  });

  it("no part imports cli/, parts import each other only through index.ts, common/ and admin-api/ import no part", () => {
    const broken = imports.flatMap((i) => {
      const why = violation(i);
      return why === undefined ? [] : [`${i.at}: ${why}`];
    });
    expect(broken, `layering broken:\n${broken.join("\n")}`).toEqual([]);
  });

  it("recognises each kind of violation", () => {
    const at = (from: string, to: string): Import => ({ at: `${from}:1`, from, to });
    expect(violation(at("signer/server/start.ts", "cli/run.ts"))).toMatch(/imports the CLI/);
    expect(violation(at("watchdog/monitor.ts", "signer/server/auth.ts"))).toMatch(/only through signer\/index\.ts/);
    expect(violation(at("cli/keys.ts", "signer/keystore/index.ts"))).toMatch(/only through signer\/index\.ts/);
    expect(violation(at("common/files.ts", "slashing-db/index.ts"))).toMatch(/imports none/);
    expect(violation(at("admin-api/index.ts", "common/index.ts"))).toMatch(/imports none/);
    expect(violation(at("watchdog/monitor.ts", "signer/index.ts"))).toBeUndefined();
    expect(violation(at("signer/server/start.ts", "signer/keystore/pin.ts"))).toBeUndefined();
  });
});
