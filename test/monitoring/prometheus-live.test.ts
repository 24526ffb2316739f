// The shipped alert rules evaluated by a real Prometheus (Debian package `prometheus`) scraping a real signer and
// a real watchdog daemon, with a validator client signing: a healthy deployment raises no alert, not even a
// pending one; a slashing refusal fires VigilSlashingRefusal with its reason; a storm of wrong tokens and a
// client gone silent show in the expressions of VigilAuthFailureStorm and VigilValidatorSilent (their `for` and
// their 36 s threshold are minutes and mainnet slots: the expressions are queried, the threshold scaled to 400 ms slots).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWatchdog, type WatchdogDaemon } from "../../watchdog/index.js";
import { freePort } from "../helpers/ports.js";
import { tempDir } from "../helpers/tmp.js";
import { attestationBody, http, randaoBody } from "../signer/harness.js";
import { admin, createSimEnv, SLOT_MS, sleep, waitFor, type SimEnv } from "../watchdog/sim/harness.js";
import type { ClientsResponse } from "../../admin-api/index.js";
import { alertRules, RULES_FILE } from "./assets.js";

const probe = spawnSync("prometheus", ["--version"], { encoding: "utf8" });
const missing =
  probe.status === 0 ? undefined : `prometheus is not installed (${probe.error?.message ?? probe.stderr}); install the Debian package "prometheus"`;
// In CI a missing binary is a broken setup (.ci/run installs it), not a reason to skip.
if (missing && process.env.CI === "true") throw new Error(missing);
if (missing) console.warn(`SKIPPING the live Prometheus test of the alert rules: ${missing}`);

class Sink extends Writable {
  override _write(_chunk: Buffer, _e: BufferEncoding, done: () => void): void {
    done();
  }
}

interface PromAlert {
  labels: Record<string, string>;
  state: "pending" | "firing";
}

let env: SimEnv;
let daemon: WatchdogDaemon | undefined;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let promLog = "";

async function api<T>(route: string): Promise<T> {
  const r = await http(`${promUrl}${route}`);
  if (r.status !== 200) throw new Error(`Prometheus ${route}: ${r.status} ${r.text}`);
  return (r.json() as { data: T }).data;
}
const alerts = async () => (await api<{ alerts: PromAlert[] }>("/api/v1/alerts")).alerts;
const query = async (q: string) => (await api<{ result: { metric: Record<string, string> }[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`)).result;
const tokenOf = (file: string) => fs.readFileSync(path.join(env.dir, file), "utf8").trim();
const exprOf = (alert: string) => alertRules().find((r) => r.alert === alert)!.expr;

describe.skipIf(missing !== undefined)("the alert rules in a real Prometheus, scraping a real signer and watchdog", () => {
  beforeAll(async () => {
    env = await createSimEnv("prom", { keys: 2 });
    env.vcs.primary.start();
    // The backup's client signs once (a RANDAO reveal: no slashing watermark to disturb the primary's duties)
    // while a fresh signer still enables every client; the watchdog then fences it: a disabled client that is
    // silent from then on, which no alert may report.
    const r = await http(`${env.signer.url}/api/v1/eth2/sign/${env.keys[0]!.pubkey}`, {
      body: randaoBody(1, env.chain.gvr),
      headers: { authorization: `Bearer ${tokenOf("backup.token")}` },
    });
    expect(r.status, r.text).toBe(200);
    daemon = await startWatchdog(env.config, { logDestination: new Sink(), metricsPort: 0 });
    await waitFor(
      "the standby fenced",
      async () => (await admin<ClientsResponse>(env, "/admin/v1/clients")).body.clients.find((c) => c.id === "backup-vc")?.enabled === false,
      5_000,
    );
    await waitFor("the primary client's first signatures", () => env.vcs.primary.signedCount() > 0, 10_000);
    const dir = tempDir("vigil-prometheus-");
    const hostPort = (url: string) => new URL(url).host;
    const config = {
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [RULES_FILE],
      scrape_configs: [
        { job_name: "vigil-signer", static_configs: [{ targets: [hostPort(env.signer.url)] }] },
        { job_name: "vigil-watchdog", static_configs: [{ targets: [hostPort(daemon.metricsAddress!)] }] },
      ],
    };
    fs.writeFileSync(path.join(dir, "prometheus.yml"), JSON.stringify(config)); // JSON is YAML
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      "prometheus",
      [`--config.file=${path.join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    prometheus.stderr!.on("data", (d: Buffer) => (promLog += d.toString()));
    await waitFor(
      "Prometheus scraping both targets",
      async () => {
        try {
          return (await query("up == 1")).length === 2;
        } catch {
          return false;
        }
      },
      20_000,
      200,
    );
  });

  afterAll(async () => {
    prometheus?.kill("SIGTERM");
    await daemon?.stop(1_000);
    await env?.destroy();
  });

  it("a healthy deployment raises no alert, pending or firing", async () => {
    await sleep(4_000); // a few evaluations over several scrapes
    expect(await alerts(), promLog).toEqual([]);
  });

  it("a slashing refusal fires VigilSlashingRefusal, with its reason", async () => {
    const refuse = async (n: number) => {
      // epoch 0 is behind the client's own attestations: refused whatever the root
      const body = attestationBody(0, 0, { gvr: env.chain.gvr, blockRoot: `0x${String(n).padStart(2, "0").repeat(32)}`, slot: 0 });
      const r = await http(`${env.signer.url}/api/v1/eth2/sign/${env.keys[0]!.pubkey}`, {
        body,
        headers: { authorization: `Bearer ${tokenOf("primary.token")}` },
      });
      expect(r.status, r.text).toBe(412);
    };
    await refuse(1);
    await sleep(2_500); // the refusal series is scraped before it rises: increase() sees the rise
    await refuse(2);
    const fired = await waitFor(
      "VigilSlashingRefusal firing",
      async () => (await alerts()).find((a) => a.labels.alertname === "VigilSlashingRefusal" && a.state === "firing"),
      15_000,
      200,
    );
    expect(fired.labels).toMatchObject({ job: "vigil-signer", severity: "page", instance: new URL(env.signer.url).host });
    expect(fired.labels.reason).toBeTruthy();
  });

  it("a storm of wrong tokens shows in VigilAuthFailureStorm's expression, per API", async () => {
    // rate() over its 5 minutes: 0.2/s is 60 failures in them, whenever they came
    expect(await query(exprOf("VigilAuthFailureStorm"))).toEqual([]);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 30; i++)
        await http(`${env.signer.url}/api/v1/eth2/sign/${env.keys[0]!.pubkey}`, {
          body: attestationBody(0, 0, { gvr: env.chain.gvr }),
          headers: { authorization: `Bearer wrong-token-${round}-${i}` },
        });
      await sleep(1_200);
    }
    const result = await waitFor(
      "the storm in the expression",
      async () => (await query(exprOf("VigilAuthFailureStorm"))).length > 0 && query(exprOf("VigilAuthFailureStorm")),
      10_000,
      200,
    );
    expect(result.map((r) => r.metric.api)).toEqual(["eth2"]);
  });

  it("an enabled client gone silent shows in VigilValidatorSilent's expression; the fenced standby does not", async () => {
    // 3 slots of 400 ms instead of 12 s; the epoch is 8 slots and each of 2 validators attests once in it
    const silentAfter = (20 * SLOT_MS) / 1000;
    const expr = exprOf("VigilValidatorSilent").replace(") > 36", `) > ${silentAfter}`);
    expect(expr).not.toBe(exprOf("VigilValidatorSilent"));
    expect(await query(expr)).toEqual([]);
    await daemon!.stop(1_000); // no failover: the watchdog would move signing to the backup
    daemon = undefined;
    env.vcs.primary.stop();
    const result = await waitFor("the silence in the expression", async () => (await query(expr)).length > 0 && query(expr), 20_000, 250);
    expect(result.map((r) => r.metric)).toEqual([{ client: "primary-vc" }]); // not backup-vc: silent, but fenced
  });
});
