import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

/** A fresh temporary directory, removed when the test file finishes. */
export function tempDir(prefix = "vigil-test-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let counter = 0;
/** A path for a new database file inside `dir`. */
export function freshDbPath(dir: string): string {
  return path.join(dir, `slashing-${process.pid}-${counter++}.sqlite`);
}
