// The watchdog's metrics listener has the signer's Host/Origin guard: no web page reads the daemon's state
// (DNS rebinding, cross-origin requests). The daemon runs against dead endpoints: only its listener matters here.
import http from "node:http";
import { Writable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseWatchdogConfig, startWatchdog, type WatchdogDaemon } from "../../watchdog/index.js";
import { tempDir } from "../helpers/tmp.js";
import { deadEndpointsWatchdogConfig } from "../helpers/watchdog-config.js";

const dir = tempDir("vigil-wd-guard-");
let daemon: WatchdogDaemon;
const quiet = new Writable({ write: (_c, _e, done) => done() });

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  const config = parseWatchdogConfig(
    deadEndpointsWatchdogConfig(dir, {
      metrics: { enabled: true, host: "127.0.0.1", port: 0, hostAllowlist: ["watchdog.internal"] },
      log: { level: "silent" },
    }),
    dir,
  );
  daemon = await startWatchdog(config, { logDestination: quiet, metricsPort: 0 });
}, 60_000);

afterAll(async () => {
  await daemon?.stop(1_000);
});

it("refuses a foreign Host and a browser Origin on /metrics and /healthz; serves loopback and listed names", async () => {
  const url = daemon.metricsAddress!;
  const port = new URL(url).port;
  for (const route of ["/metrics", "/healthz", "/nowhere"]) {
    const evil = await get(`${url}${route}`, { host: `evil.example:${port}` });
    expect(evil.status, route).toBe(403);
    expect(JSON.parse(evil.body).code).toBe("HOST_NOT_ALLOWED");
    const page = await get(`${url}${route}`, { origin: "http://evil.example" });
    expect(page.status, route).toBe(403);
    expect(JSON.parse(page.body).code).toBe("ORIGIN_NOT_ALLOWED");
  }
  expect((await get(`${url}/metrics`)).status).toBe(200);
  expect((await get(`${url}/healthz`, { host: `localhost:${port}` })).status).toBe(200);
  expect((await get(`${url}/metrics`, { host: "watchdog.internal" })).status).toBe(200);
  expect((await get(`${url}/metrics`)).body).toMatch(/vigil_watchdog_http_refusals_total\{code="HOST_NOT_ALLOWED"\} [1-9]/);
});

it("config: a bad allowlist entry names its field", () => {
  const base = {
    validators: { indices: ["1"] },
    signers: { main: { url: "http://127.0.0.1:9000", adminTokenFile: "a" } },
    stacks: {
      primary: { clientId: "p", signer: "main", beaconNode: { url: "http://127.0.0.1:1" }, service: { unit: "a" } },
      backup: { clientId: "b", signer: "main", beaconNode: { url: "http://127.0.0.1:1" }, service: { unit: "b" } },
    },
  };
  expect(() => parseWatchdogConfig({ ...base, metrics: { hostAllowlist: ["http://x"] } })).toThrow(/metrics\.hostAllowlist\[0\]/);
  expect(parseWatchdogConfig(base).metrics).toMatchObject({ hostAllowlist: [], allowedOrigins: [] });
});
