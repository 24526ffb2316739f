// The monitoring assets cannot drift from the code: a real signer (SoftHSM2 token, real slashing database) and
// a real watchdog daemon watching it, a validator client signing through it; both /metrics are scraped, and
// every vigil_* name that a dashboard panel, a dashboard variable or an alert rule reads must be exposed there
// (histogram series through their _bucket/_sum/_count). Names exposed without a sample yet must be counters of
// events this scenario does not produce (a refusal, a failover), not gauges that should have been set. And
// signer/docs/metrics.md names exactly the vigil_* metrics the two expose.
import fs from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWatchdog, type WatchdogDaemon } from "../../watchdog/index.js";
import { createSimEnv, waitFor, type SimEnv } from "../watchdog/sim/harness.js";
import { alertRules, dashboardExprs, loadDashboard, metricNames } from "./assets.js";

class Sink extends Writable {
  override _write(_chunk: Buffer, _e: BufferEncoding, done: () => void): void {
    done();
  }
}

/** What a Prometheus text exposition declares (# TYPE) and which names have samples. */
interface Exposition {
  types: Map<string, string>;
  sampled: Set<string>;
  text: string;
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const sampled = new Set<string>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{|\s)/.exec(line);
    if (s) sampled.add(s[1]!);
  }
  return { types, sampled, text };
}

/** The declared metric a series name belongs to (a histogram's _bucket/_sum/_count series to the histogram). */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (m && (types.get(m[1]!) === "histogram" || (m[2] !== "bucket" && types.get(m[1]!) === "summary"))) return m[1]!;
  return undefined;
}

// Counters that exist (labelled) only from their first event, which this scenario does not cause.
const EVENT_COUNTERS = new Set([
  "vigil_signer_slashing_refusals_total",
  "vigil_signer_requests_shed_total",
  "vigil_signer_slashing_db_unavailable_total",
  "vigil_signer_audit_log_unavailable_total",
  "vigil_watchdog_failovers_total",
  "vigil_watchdog_alerts_total",
]);

let env: SimEnv;
let daemon: WatchdogDaemon;
let signer: Exposition;
let watchdog: Exposition;

beforeAll(async () => {
  env = await createSimEnv("drift", { keys: 2 });
  env.vcs.primary.start();
  daemon = await startWatchdog(env.config, { logDestination: new Sink(), metricsPort: 0 });
  await waitFor("the primary client's first signatures", () => env.vcs.primary.signedCount() > 0, 10_000);
  const scrape = async (url: string) => parseExposition(await (await fetch(`${url}/metrics`)).text());
  // the watchdog's per-client series appear after a monitor round that saw the client's last request
  watchdog = await waitFor(
    "the watchdog's per-client series",
    async () => {
      const e = await scrape(daemon.metricsAddress!);
      return e.sampled.has("vigil_watchdog_signer_last_request_age_seconds") && e;
    },
    10_000,
  );
  signer = await scrape(env.signer.url);
});

afterAll(async () => {
  await daemon?.stop(1_000);
  await env?.destroy();
});

describe("dashboard and alert rules against the real /metrics", () => {
  it("every vigil_* name the dashboard and the alert rules read is exposed by the signer or the watchdog", () => {
    const used = new Map<string, string[]>(); // name → where
    const note = (where: string, expr: string) => {
      for (const n of metricNames(expr)) used.set(n, [...(used.get(n) ?? []), where]);
    };
    for (const e of dashboardExprs(loadDashboard())) note(`dashboard: ${e.panel}`, e.expr);
    for (const r of alertRules()) note(`alert ${r.alert}`, r.expr);
    expect(used.size).toBeGreaterThan(30);

    const missing: string[] = [];
    const unsampled: string[] = [];
    for (const [name, where] of used) {
      const family = familyOf(name, signer.types) ?? familyOf(name, watchdog.types);
      if (!family) {
        missing.push(`${name} (${where.join("; ")})`);
        continue;
      }
      if (!signer.sampled.has(name) && !watchdog.sampled.has(name) && !EVENT_COUNTERS.has(family)) unsampled.push(name);
    }
    expect(missing, "names read by the assets that no /metrics exposes").toEqual([]);
    expect(unsampled, "gauges and histograms exposed without any sample in a signing deployment").toEqual([]);
  });

  it("the per-client series the silent-validator alert joins carry the same client ids", () => {
    const clients = (text: string, name: string) => new Set([...text.matchAll(new RegExp(`^${name}\\{[^}]*client="([^"]+)"`, "gm"))].map((m) => m[1]!));
    expect([...clients(signer.text, "vigil_signer_client_enabled")].sort()).toEqual(["backup-vc", "primary-vc"]);
    expect([...clients(signer.text, "vigil_signer_client_last_signature_timestamp_seconds")]).toEqual(["primary-vc"]);
    expect([...clients(watchdog.text, "vigil_watchdog_signer_client_enabled")].sort()).toEqual(["backup-vc", "primary-vc"]);
  });
});

describe("signer/docs/metrics.md against the real /metrics", () => {
  it("documents every vigil_* metric the signer and the watchdog expose, and no metric that neither does", () => {
    const doc = fs.readFileSync(path.resolve(__dirname, "../../signer/docs/metrics.md"), "utf8");
    // Vigil's own tables: rows whose first cell is a `vigil_…` name (the Web3Signer table puts Vigil's second).
    const documented = new Set([...doc.matchAll(/^\|\s*`(vigil_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
    const exposed = new Set([...signer.types.keys(), ...watchdog.types.keys()].filter((n) => n.startsWith("vigil_")));
    // The --workers primary's own metrics are not in a single-process scrape; the workers test covers them.
    const clusterOnly = ["vigil_signer_workers", "vigil_signer_worker_restarts_total"];
    expect(
      [...exposed].filter((n) => !documented.has(n)),
      "exposed but not documented",
    ).toEqual([]);
    expect(
      [...documented].filter((n) => !exposed.has(n) && !clusterOnly.includes(n)),
      "documented but exposed by neither daemon",
    ).toEqual([]);
  });
});
