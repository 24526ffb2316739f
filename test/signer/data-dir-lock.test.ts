// One data directory, one signer: a second signer on the same directory exits at once with its own exit code
// and one line; the lock dies with its holder (SIGKILL included); and the fencing store decides from the
// stored generation, so neither a second process nor a stale in-memory copy can move it backwards.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { SqliteClientFencing } from "../../signer/server/fencing/sqlite.js";
import { spawnSigner } from "../helpers/signer-process.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { start, testConfig, tokenWithInteropKeys, writePrivate } from "./harness.js";

const work = tempDir("vigil-datadir-lock-");
let token: TestToken;

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-datadir-lock", 2);
}, 120_000);
afterAll(() => token?.destroy());

describe("the data directory lock", () => {
  it("a second `vigil signer start` on the same data directory exits 7 with one line; after SIGKILL of the first a new one starts", async () => {
    const dataDir = path.join(work, "cli");
    const configFile = writePrivate(
      path.join(work, "cli.json"),
      JSON.stringify({
        network: "minimal-devnet",
        listen: { host: "127.0.0.1", port: 0 },
        dataDir,
        hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
        logLevel: "warn",
      }),
    );
    const first = spawnSigner(configFile, "ignore");
    await first.ready;
    try {
      const second = spawnSigner(configFile, "ignore");
      expect((await second.exited).code).toBe(EXIT_CODES.dataDirInUse);
      const lines = second
        .stderr()
        .split("\n")
        .filter((l) => l !== "");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(
        `vigil: data directory ${dataDir} is in use by another signer (pid ${first.child.pid}); stop it first, or give this one its own dataDir [DATA_DIR_IN_USE]`,
      );
    } finally {
      first.child.kill("SIGKILL");
      await first.exited;
    }
    // No stale lock: the kernel released it with the process.
    const third = spawnSigner(configFile, "ignore");
    await third.ready;
    third.child.kill("SIGTERM");
    expect((await third.exited).code).toBe(0);
  }, 90_000);

  it("in one process too: a second startSigner on the directory is refused, and the holder keeps its lock against other processes; close() releases it", async () => {
    const config = testConfig(token, path.join(work, "inproc"), { logLevel: "warn" });
    const { signer } = await start(config);
    try {
      await expect(start(config)).rejects.toMatchObject({ code: "DATA_DIR_IN_USE", exitCode: 7 });
      // The refused attempt must not have dropped the holder's lock (closing any descriptor of the lock file
      // would): another process is still refused.
      const other = spawnSigner(
        writePrivate(
          path.join(work, "inproc.json"),
          JSON.stringify({
            network: "minimal-devnet",
            listen: { host: "127.0.0.1", port: 0 },
            dataDir: config.dataDir,
            hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
            logLevel: "warn",
          }),
        ),
        "ignore",
      );
      expect((await other.exited).code).toBe(EXIT_CODES.dataDirInUse);
    } finally {
      await signer.close();
    }
    const { signer: again } = await start(config);
    await again.close();
  }, 60_000);
});

describe("the fencing store decides from the stored generation", () => {
  it("two stores on one file: apply(5) through A, then apply(3) through B is STALE and the durable value stays 5", async () => {
    const file = path.join(work, "fencing", "signer-state.sqlite");
    const a = SqliteClientFencing.open(file);
    const b = SqliteClientFencing.open(file); // loaded at generation 0: its memory is stale from here on
    try {
      expect(await a.apply("primary", false, 5)).toMatchObject({ ok: true, generation: 5 });
      expect(await b.apply("primary", true, 3)).toEqual({ ok: false, currentGeneration: 5, reason: "STALE" });
      // B's refusal brought its memory up to the disk.
      expect(b.generation).toBe(5);
      expect(b.isEnabled("primary")).toBe(false);
      // The decision-ownership rule too is read from the stored row.
      expect(await a.apply("primary", false, 7, "failover-a")).toMatchObject({ ok: true });
      expect(await b.apply("primary", true, 7, "failover-b")).toEqual({ ok: false, currentGeneration: 7, reason: "GENERATION_TAKEN" });
    } finally {
      await a.close();
      await b.close();
    }
    const reopened = SqliteClientFencing.open(file);
    try {
      expect(reopened.generation).toBe(7);
      expect(reopened.fence("primary")).toEqual({ enabled: false, changedAtGeneration: 7 });
    } finally {
      await reopened.close();
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});
