/**
 * What vigil_build_info{version,commit} reports in both daemons: the package.json version, and the git commit
 * (short hash) of the checkout the code runs from when there is one. Read once per process, at first use; a
 * deployment without git or outside a checkout reports "unknown" rather than failing.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface BuildInfo {
  version: string;
  commit: string;
}

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  cached ??= readBuildInfo();
  return cached;
}

function readBuildInfo(): BuildInfo {
  const root = packageRoot();
  if (root === undefined) return { version: "unknown", commit: "unknown" };
  let version = "unknown";
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version?: unknown };
    if (typeof pkg.version === "string") version = pkg.version;
  } catch {
    /* unknown */
  }
  return { version, commit: gitCommit(root) };
}

/** The directory holding Vigil's package.json: above this file whether it runs from source or from dist/. */
function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = path.join(dir, "package.json");
    try {
      if ((JSON.parse(fs.readFileSync(file, "utf8")) as { name?: unknown }).name === "vigil") return dir;
    } catch {
      /* not here */
    }
    dir = path.dirname(dir);
  }
  return undefined;
}

function gitCommit(root: string): string {
  try {
    const out = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
      cwd: root,
      timeout: 2_000,
      stdio: ["ignore", "pipe", "ignore"],
      encoding: "utf8",
    }).trim();
    return /^[0-9a-f]{7,40}$/.test(out) ? out : "unknown";
  } catch {
    return "unknown";
  }
}
