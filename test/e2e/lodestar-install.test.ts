// The e2e Lodestar install (test/e2e/lodestar.ts) must not block a vitest worker: a synchronous `npm ci` of
// 60+ s inside a worker made vitest fail with "Timeout calling onTaskUpdate" although both scenarios passed.
// Here `npm` is a stand-in on PATH that takes a while, so this runs in seconds and offline.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { e2eCacheRoot, ensureLodestar, installLodestar, REPO_ROOT } from "./lodestar.js";

const saved = { PATH: process.env.PATH, VIGIL_E2E_CACHE: process.env.VIGIL_E2E_CACHE, VIGIL_E2E_LODESTAR_SRC: process.env.VIGIL_E2E_LODESTAR_SRC };
let work: string;

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-e2e-install-"));
  const src = path.join(work, "lodestar-src");
  fs.mkdirSync(src);
  for (const f of ["package.json", "package-lock.json", "README.md"]) fs.writeFileSync(path.join(src, f), `{"name":"stand-in","file":"${f}"}\n`);
  fs.writeFileSync(path.join(src, "run-devnet.sh"), "#!/bin/sh\n");
  const bin = path.join(work, "bin");
  fs.mkdirSync(bin);
  // Records its arguments, takes 1.5 s, then leaves what `npm ci` of Lodestar would.
  fs.writeFileSync(
    path.join(bin, "npm"),
    `#!/bin/sh\necho "$@" >> "${work}/npm-calls"\nsleep 1.5\nmkdir -p node_modules/.bin && printf '#!/bin/sh\\n' > node_modules/.bin/lodestar && chmod +x node_modules/.bin/lodestar\n`,
    { mode: 0o755 },
  );
  process.env.PATH = `${bin}:${saved.PATH}`;
  process.env.VIGIL_E2E_CACHE = path.join(work, "empty-cache"); // a cold cache, as on a fresh machine
  process.env.VIGIL_E2E_LODESTAR_SRC = src;
});

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(work, { recursive: true, force: true });
});

describe("e2e: installing Lodestar", () => {
  it("the cache directory follows $VIGIL_E2E_CACHE", () => {
    expect(e2eCacheRoot()).toBe(path.join(work, "empty-cache"));
  });

  it("installs asynchronously into a cold cache: the event loop keeps running during npm ci", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 50);
    try {
      const dir = await installLodestar();
      expect(dir.startsWith(path.join(work, "empty-cache") + path.sep)).toBe(true);
      expect(fs.existsSync(path.join(dir, ".installed"))).toBe(true);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThanOrEqual(10); // ~30 while npm "runs" 1.5 s; a blocking install gives 0
    expect(fs.readFileSync(path.join(work, "npm-calls"), "utf8")).toMatch(/^ci /);
    // The second time it is cached: npm is not run again.
    await installLodestar();
    expect(fs.readFileSync(path.join(work, "npm-calls"), "utf8").trim().split("\n")).toHaveLength(1);
    expect(fs.existsSync(path.join(ensureLodestar(), "run-devnet.sh"))).toBe(true);
  });

  it("a scenario never installs: without the globalSetup's install it stops with what to run", () => {
    expect(() => ensureLodestar()).toThrow(/npm run e2e/);
    expect(fs.existsSync(path.join(work, "npm-calls"))).toBe(false);
  });

  it("the e2e config installs in its globalSetup, which runs in vitest's main process", async () => {
    const config = (await import(pathToFileURL(path.join(REPO_ROOT, "test/e2e/vitest.config.ts")).href)) as { default: { test: { globalSetup: string[] } } };
    expect(config.default.test.globalSetup).toEqual(["test/e2e/global-setup.ts"]);
    const setup = fs.readFileSync(path.join(REPO_ROOT, "test/e2e/global-setup.ts"), "utf8");
    expect(setup).toMatch(/await installLodestar\(/);
  });
});
