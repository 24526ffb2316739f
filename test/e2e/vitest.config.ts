// End-to-end tests against a real validator client (Lodestar v1.5.1): `npm run e2e`. Kept apart from the
// unit tests (their files end in .e2e.ts, which the main config does not pick up): they take minutes.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export default defineConfig({
  test: {
    root,
    include: ["test/e2e/**/*.e2e.ts"],
    globalSetup: ["test/e2e/global-setup.ts"], // installs Lodestar in the main process, never in a worker
    pool: "forks",
    fileParallelism: false, // one devnet at a time: they compete for CPU and the slot clock does not wait
    testTimeout: 15 * 60_000,
    hookTimeout: 10 * 60_000,
    reporters: ["verbose"],
  },
});
