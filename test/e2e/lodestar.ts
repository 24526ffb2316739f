// The pinned Lodestar v1.5.1 from ../shared/e2e/lodestar, installed once into a cache directory keyed by its
// lockfile (the shared folder is read-only). A later run with the same lockfile reuses it at once.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The checkout, whether this runs from test/e2e/ (vitest) or dist/test/e2e/. */
export const REPO_ROOT = path.resolve(here, here.split(path.sep).includes("dist") ? "../../.." : "../..");

const FILES = ["package.json", "package-lock.json", "run-devnet.sh", "README.md"];

/** The shared folder: $VIGIL_E2E_LODESTAR_SRC, or ../shared/e2e/lodestar beside the checkout. */
export function lodestarSource(): string {
  const dir = process.env.VIGIL_E2E_LODESTAR_SRC ?? path.resolve(REPO_ROOT, "../shared/e2e/lodestar");
  if (!fs.existsSync(path.join(dir, "run-devnet.sh"))) throw new Error(`no Lodestar devnet at ${dir} (set VIGIL_E2E_LODESTAR_SRC)`);
  return dir;
}

/** Installs (if needed) and returns the directory holding node_modules/.bin/lodestar and run-devnet.sh. */
export function ensureLodestar(log: (line: string) => void = () => {}): string {
  const src = lodestarSource();
  const hash = crypto.createHash("sha256").update(fs.readFileSync(path.join(src, "package-lock.json"))).digest("hex").slice(0, 12);
  const cacheRoot = process.env.VIGIL_E2E_CACHE ?? path.join(os.homedir(), ".cache", "vigil-e2e");
  const dir = path.join(cacheRoot, `lodestar-1.5.1-${hash}`);
  if (!fs.existsSync(path.join(dir, ".installed"))) {
    log(`installing Lodestar v1.5.1 into ${dir} (npm ci, about two minutes; cached afterwards)`);
    fs.mkdirSync(cacheRoot, { recursive: true });
    // Into a staging directory first: an interrupted install never looks complete.
    const stage = fs.mkdtempSync(path.join(cacheRoot, ".stage-"));
    try {
      for (const f of FILES) fs.copyFileSync(path.join(src, f), path.join(stage, f));
      for (const f of FILES) fs.chmodSync(path.join(stage, f), 0o755);
      const started = Date.now();
      execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: stage, stdio: ["ignore", "ignore", "inherit"] });
      fs.writeFileSync(path.join(stage, ".installed"), new Date().toISOString() + "\n");
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(stage, dir);
      log(`Lodestar installed in ${Math.round((Date.now() - started) / 1000)} s`);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }
  // The script is tiny and may change without the lockfile: always take the shared one.
  fs.copyFileSync(path.join(src, "run-devnet.sh"), path.join(dir, "run-devnet.sh"));
  fs.chmodSync(path.join(dir, "run-devnet.sh"), 0o755);
  if (!fs.existsSync(path.join(dir, "node_modules/.bin/lodestar"))) throw new Error(`${dir} has no node_modules/.bin/lodestar; delete it and run again`);
  return dir;
}
