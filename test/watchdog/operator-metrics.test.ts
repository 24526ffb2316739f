// The watchdog's metrics for issue 14's dashboard and alerts, from a real daemon's /metrics: vigil_build_info,
// and vigil_watchdog_heartbeat_timestamp_seconds advancing with every completed monitoring round (the daemon
// runs against dead endpoints: its rounds still complete, each observing the failures).
import { Writable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseWatchdogConfig, startWatchdog, type WatchdogDaemon } from "../../watchdog/index.js";
import { tempDir } from "../helpers/tmp.js";
import { deadEndpointsWatchdogConfig } from "../helpers/watchdog-config.js";

const dir = tempDir("vigil-wd-metrics-");
const INTERVAL_MS = 100;
let daemon: WatchdogDaemon;
const quiet = new Writable({ write: (_c, _e, done) => done() });

const scrape = async () => (await fetch(`${daemon.metricsAddress!}/metrics`)).text();
const heartbeat = (body: string) => Number(/^vigil_watchdog_heartbeat_timestamp_seconds (\S+)$/m.exec(body)?.[1] ?? Number.NaN);

beforeAll(async () => {
  const config = parseWatchdogConfig(
    deadEndpointsWatchdogConfig(dir, {
      monitor: { intervalMs: INTERVAL_MS },
      metrics: { enabled: true, host: "127.0.0.1", port: 0 },
      log: { level: "silent" },
    }),
    dir,
  );
  daemon = await startWatchdog(config, { logDestination: quiet, metricsPort: 0 });
}, 60_000);

afterAll(async () => {
  await daemon?.stop(1_000);
});

it("publishes vigil_build_info with the package version and a commit", async () => {
  expect(await scrape()).toMatch(/^vigil_build_info\{version="0\.1\.0",commit="([0-9a-f]{7,40}|unknown)"\} 1$/m);
});

it("the heartbeat is the time of the last completed monitoring round, and advances", async () => {
  const deadline = Date.now() + 10_000;
  let first = heartbeat(await scrape());
  while (!(first > 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    first = heartbeat(await scrape());
  }
  expect(Math.abs(first - Date.now() / 1000)).toBeLessThan(5);
  let later = first;
  while (later <= first && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
    later = heartbeat(await scrape());
  }
  expect(later).toBeGreaterThan(first);
  expect(later).toBeLessThanOrEqual(Date.now() / 1000);
});
