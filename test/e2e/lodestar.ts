// The pinned Lodestar v1.5.1 from ../shared/e2e/lodestar, installed once into a cache directory keyed by its
// lockfile (the shared folder is read-only) by the e2e globalSetup. A later run with the same lockfile reuses it.
import { spawn } from "node:child_process";
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

/** $VIGIL_E2E_CACHE, or ~/.cache/vigil-e2e: where Lodestar is installed once (point it at an empty directory for a cold run). */
export function e2eCacheRoot(): string {
  return process.env.VIGIL_E2E_CACHE ?? path.join(os.homedir(), ".cache", "vigil-e2e");
}

/** The install directory for the shared Lodestar, keyed by its lockfile. */
function lodestarDir(src: string): string {
  const hash = crypto
    .createHash("sha256")
    .update(fs.readFileSync(path.join(src, "package-lock.json")))
    .digest("hex")
    .slice(0, 12);
  return path.join(e2eCacheRoot(), `lodestar-1.5.1-${hash}`);
}

/**
 * Installs Lodestar if needed (`npm ci`, about a minute or two). Asynchronous, and meant for the vitest
 * globalSetup (test/e2e/global-setup.ts), which runs in the main process before any test worker: a synchronous
 * install inside a worker blocked vitest's worker RPC past its 60 s limit ("Timeout calling onTaskUpdate").
 */
export async function installLodestar(log: (line: string) => void = () => {}): Promise<string> {
  const src = lodestarSource();
  const dir = lodestarDir(src);
  if (fs.existsSync(path.join(dir, ".installed"))) return dir;
  const cacheRoot = e2eCacheRoot();
  log(`installing Lodestar v1.5.1 into ${dir} (npm ci, a minute or two; cached afterwards)`);
  fs.mkdirSync(cacheRoot, { recursive: true });
  // Into a staging directory first: an interrupted install never looks complete.
  const stage = fs.mkdtempSync(path.join(cacheRoot, ".stage-"));
  try {
    for (const f of FILES) fs.copyFileSync(path.join(src, f), path.join(stage, f));
    for (const f of FILES) fs.chmodSync(path.join(stage, f), 0o755);
    const started = Date.now();
    await run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], stage);
    fs.writeFileSync(path.join(stage, ".installed"), `${new Date().toISOString()}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(stage, dir);
    log(`Lodestar installed in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  return dir;
}

function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "ignore", "inherit"] });
    child.once("error", reject);
    child.once("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} in ${cwd} exited ${signal ?? code}`))));
  });
}

/** The directory holding node_modules/.bin/lodestar and run-devnet.sh; the globalSetup has installed it. */
export function ensureLodestar(): string {
  const src = lodestarSource();
  const dir = lodestarDir(src);
  if (!fs.existsSync(path.join(dir, ".installed"))) {
    throw new Error(`Lodestar is not installed in ${dir}; run the scenarios with \`npm run e2e\` (its globalSetup installs it)`);
  }
  // The script is tiny and may change without the lockfile: always take the shared one.
  fs.copyFileSync(path.join(src, "run-devnet.sh"), path.join(dir, "run-devnet.sh"));
  fs.chmodSync(path.join(dir, "run-devnet.sh"), 0o755);
  if (!fs.existsSync(path.join(dir, "node_modules/.bin/lodestar"))) throw new Error(`${dir} has no node_modules/.bin/lodestar; delete it and run again`);
  return dir;
}
