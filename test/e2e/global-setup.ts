// Runs once in vitest's main process before the scenarios: installs the pinned Lodestar (npm ci) without
// blocking any test worker. `npm run e2e` alone is enough; a warm cache makes this instant.
import { installLodestar } from "./lodestar.js";

export default async function setup(): Promise<void> {
  await installLodestar((line) => process.stdout.write(`[e2e setup] ${line}\n`));
}
