import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks", // native addons (better-sqlite3, pkcs11js, blst) are happiest in separate processes
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
