// Pure and small parts: config validation, hysteresis, health judgements, the command runner, the service
// status interpretation, webhook alerts, and the checker itself (it must catch what it claims to catch).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { WebhookSender } from "../../watchdog/alerts/webhook.js";
import { runCommand } from "../../watchdog/probes/command.js";
import { interpretStatus } from "../../watchdog/probes/service.js";
import type { ClientView } from "../../admin-api/index.js";
import { assessActive, Hysteresis, judgeBeacon, judgeSignerWitness, loadWatchdogConfig, parseWatchdogConfig, recoveryAction } from "../../watchdog/index.js";
import type { BeaconProbe } from "../../watchdog/probes/beacon.js";
import { divergentDatabases } from "../../watchdog/failover/instance-fence.js";
import { mergeClientViews } from "../../admin-api/index.js";
import { check, type FeedSignature } from "./checker.js";

const base = () => ({
  validators: { indices: ["1", "2"] },
  signers: { main: { url: "http://127.0.0.1:9000", adminTokenFile: "admin.token" } },
  stacks: {
    primary: { clientId: "p", signer: "main", beaconNode: { url: "http://127.0.0.1:5052" }, service: { unit: "lodestar-vc" } },
    backup: {
      clientId: "b",
      signer: "main",
      beaconNode: { url: "http://10.0.0.2:5052/" },
      service: { statusCommand: ["ssh", "backup", "systemctl", "is-active", "vc"], stopCommand: ["true"], startCommand: ["true"] },
    },
  },
});

describe("config", () => {
  it("fills defaults, resolves paths, expands `unit` into systemctl commands", () => {
    const c = parseWatchdogConfig(base(), "/etc/vigil");
    expect(c.signers.main!.adminTokenFile).toBe("/etc/vigil/admin.token");
    expect(c.stacks.primary.service.statusCommand).toEqual(["systemctl", "is-active", "lodestar-vc"]);
    expect(c.stacks.primary.service.stopCommand).toEqual(["systemctl", "stop", "lodestar-vc"]);
    expect(c.stacks.backup.beaconNodeUrl).toBe("http://10.0.0.2:5052");
    expect(c.monitor.failuresBeforeFailover).toBe(3);
    expect(c.failover.livenessQuietEpochs).toBe(2);
    expect(c.chain).toEqual({ slotDurationMs: 12_000, slotsPerEpoch: 32 });
  });

  // biome-ignore-start lint/suspicious/noExplicitAny: each case breaks the config's shape on purpose
  it.each([
    [(c: any) => (c.stacks.backup.signer = "nope"), /stacks\.backup\.signer names no signer/],
    [(c: any) => (c.stacks.primary.beaconNode.url = "ftp://x"), /stacks\.primary\.beaconNode\.url must be an http\(s\) URL/],
    [(c: any) => (c.monitor = { failuresBeforeFailover: 1 }), /monitor\.failuresBeforeFailover must be an integer between 2/],
    [(c: any) => (c.monitor = { intervalMS: 5 }), /monitor\.intervalMS is not a known setting/],
    [(c: any) => (c.validators.indices = ["x"]), /validators\.indices\[0\] must be a decimal validator index/],
    [(c: any) => (c.stacks.backup.service.statusCommand = "systemctl is-active vc"), /stacks\.backup\.service\.statusCommand must be a non-empty array/],
    [(c: any) => delete c.stacks.primary.service.unit, /stacks\.primary\.service\.statusCommand is required/],
    [(c: any) => (c.stacks.backup.clientId = "p"), /stacks\.backup\.clientId must differ/],
    [(c: any) => (c.signers.main.urls = ["http://127.0.0.1:9001"]), /signers\.main\.urls cannot be given together with url/],
    [(c: any) => (c.signers.main = { urls: [], adminTokenFile: "admin.token" }), /signers\.main\.urls must list at least one instance URL/],
    [(c: any) => (c.signers.main = { urls: ["http://a:1", "ftp://b"], adminTokenFile: "admin.token" }), /signers\.main\.urls\[1\] must be an http\(s\) URL/],
    [(c: any) => (c.signers.main = { urls: ["http://a:1", "http://a:1/"], adminTokenFile: "admin.token" }), /signers\.main\.urls lists http:\/\/a:1 twice/],
  ])("names the field at fault (%#)", (mutate, message) => {
    // biome-ignore-end lint/suspicious/noExplicitAny: each case breaks the config's shape on purpose
    const c = base();
    mutate(c);
    expect(() => parseWatchdogConfig(c)).toThrow(message);
  });

  it("a signer with several instances: urls, in order, trailing slashes dropped; url is one instance", () => {
    expect(parseWatchdogConfig(base()).signers.main!.urls).toEqual(["http://127.0.0.1:9000"]);
    const c = { ...base(), signers: { main: { urls: ["http://10.0.0.1:9000/", "http://10.0.0.2:9000"], adminTokenFile: "admin.token" } } };
    expect(parseWatchdogConfig(c).signers.main!.urls).toEqual(["http://10.0.0.1:9000", "http://10.0.0.2:9000"]);
  });

  it("the shipped example parses", () => {
    const example = path.resolve(__dirname, "../../examples/watchdog.example.json");
    const c = loadWatchdogConfig(example);
    expect(c.stacks.backup.service.statusCommand[0]).toBe("ssh");
  });

  it("a file that is not JSON is an invalid-input error (exit 3)", () => {
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "wdcfg-")), "w.json");
    fs.writeFileSync(f, "{ nope");
    expect(() => loadWatchdogConfig(f)).toThrow(expect.objectContaining({ exitCode: 3 }));
  });
});

describe("a client's view over a signer's instances", () => {
  const view = (over: Partial<ClientView>): ClientView => ({
    id: "p",
    enabled: false,
    changedAtGeneration: 3,
    inFlight: 0,
    lastRequestAt: null,
    lastSignedAt: null,
    signed: 0,
    refused: 0,
    lastSigned: [],
    ...over,
  });

  it("quiet at one instance, busy at the other: the newest request and signature anywhere, summed counters, enabled if any says so", () => {
    const at = (s: number) => new Date(Date.UTC(2026, 10, 30, 7, 0, s)).toISOString();
    const k = (pubkey: string, s: number) => ({ pubkey, type: "ATTESTATION", slot: String(s), at: at(s) });
    const [merged] = mergeClientViews([
      [view({ lastRequestAt: at(1), lastSignedAt: at(1), signed: 2, inFlight: 1, lastSigned: [k("0xa", 1), k("0xb", 1)] })],
      [view({ enabled: true, changedAtGeneration: 4, lastRequestAt: at(9), lastSignedAt: at(8), signed: 5, refused: 1, lastSigned: [k("0xa", 8)] })],
    ]);
    expect(merged).toEqual({
      id: "p",
      enabled: true,
      changedAtGeneration: 4,
      inFlight: 1,
      lastRequestAt: at(9),
      lastSignedAt: at(8),
      signed: 7,
      refused: 1,
      lastSigned: [k("0xa", 8), k("0xb", 1)],
    });
  });
});

describe("instances of one signer on different databases", () => {
  const db = (historyId: string, backend: "sqlite" | "postgres" = "postgres") => ({
    backend,
    historyId,
    sharingNonce: null,
    fencingShared: backend === "postgres",
  });
  it("named (url → backend:historyId) only when two instances that answered disagree", () => {
    const down = { url: "http://c", ok: false as const, error: new Error("ECONNREFUSED") };
    expect(divergentDatabases([{ url: "http://a", ok: true, value: db("aa") }, { url: "http://b", ok: true, value: db("aa") }, down])).toBeUndefined();
    expect(
      divergentDatabases([
        { url: "http://a", ok: true, value: db("aa") },
        { url: "http://b", ok: true, value: null },
      ]),
    ).toBeUndefined();
    expect(
      divergentDatabases([
        { url: "http://a", ok: true, value: db("aa") },
        { url: "http://b", ok: true, value: db("bb") },
      ]),
    ).toBe("http://a → postgres:aa, http://b → postgres:bb");
  });
});

describe("hysteresis", () => {
  it("one bad observation never flips it; N in a row do; recovery needs M good ones", () => {
    const h = new Hysteresis(3, 2);
    expect(h.observe(true).state).toBe("up");
    expect(h.observe(false).state).toBe("up");
    expect(h.observe(true).state).toBe("up");
    expect(h.observe(true).state).toBe("up");
    const r = h.observe(true);
    expect(r).toMatchObject({ state: "down", changed: true, consecutiveBad: 3 });
    expect(h.observe(false).state).toBe("down");
    expect(h.observe(false)).toMatchObject({ state: "up", changed: true });
  });

  it("a flapping signal never goes down; inconclusive observations reset the streak", () => {
    const h = new Hysteresis(3, 1);
    for (let i = 0; i < 50; i++) expect(h.observe(i % 3 !== 2).state).toBe("up");
    h.observe(false);
    h.observe(true);
    h.observe(true);
    h.inconclusive();
    expect(h.observe(true).state).toBe("up");
  });
});

const beacon = (over: Partial<BeaconProbe> = {}): BeaconProbe => ({
  reachable: true,
  healthStatus: 200,
  isSyncing: false,
  syncDistance: 0,
  headSlot: 100,
  isOptimistic: false,
  elOffline: false,
  peers: 40,
  errors: [],
  durationMs: 3,
  ...over,
});
const monitor = {
  intervalMs: 100,
  probeTimeoutMs: 100,
  failuresBeforeFailover: 3,
  successesBeforeHealthy: 2,
  signerSilenceSlots: 2,
  minPeers: 5,
  maxSyncDistance: 2,
};
const view = (over: Partial<ClientView> = {}): ClientView => ({
  id: "p",
  enabled: true,
  changedAtGeneration: 0,
  inFlight: 0,
  lastRequestAt: null,
  lastSignedAt: null,
  signed: 0,
  refused: 0,
  lastSigned: [],
  ...over,
});

describe("health judgements", () => {
  it("beacon: healthy, syncing, far behind, EL offline, few peers, unreachable", () => {
    expect(judgeBeacon(beacon(), monitor).ok).toBe(true);
    expect(judgeBeacon(beacon({ healthStatus: 206, isSyncing: true, syncDistance: 9 }), monitor).reasons).toEqual([
      "health 206 (syncing)",
      "syncing (distance 9)",
      "sync distance 9 > 2",
    ]);
    expect(judgeBeacon(beacon({ elOffline: true }), monitor).reasons).toEqual(["execution client offline"]);
    expect(judgeBeacon(beacon({ peers: 1 }), monitor).reasons).toEqual(["1 peers < 5"]);
    expect(judgeBeacon(beacon({ reachable: false, errors: ["health: ECONNREFUSED"] }), monitor).reasons[0]).toMatch(/unreachable.*ECONNREFUSED/);
  });

  it("signer witness: signing / silent / fenced / unknown; a client never seen is measured from when we started watching", () => {
    const now = Date.parse("2026-01-01T00:00:10Z");
    expect(judgeSignerWitness(view({ lastRequestAt: "2026-01-01T00:00:09.500Z" }), now, 800, 0)).toBe("signing");
    expect(judgeSignerWitness(view({ lastRequestAt: "2026-01-01T00:00:09.000Z" }), now, 800, 0)).toBe("silent");
    expect(judgeSignerWitness(view({ enabled: false }), now, 800, 0)).toBe("fenced");
    expect(judgeSignerWitness(undefined, now, 800, 0)).toBe("unknown");
    expect(judgeSignerWitness(view(), now, 800, now - 100)).toBe("signing");
    expect(judgeSignerWitness(view(), now, 800, now - 1000)).toBe("silent");
  });

  it("only the signer's silence counts against the active stack; lost sight alone is not failure", () => {
    const blind = {
      service: { state: "unknown" as const, detail: "timed out", durationMs: 1000 },
      beacon: beacon({ reachable: false }),
      witness: "signing" as const,
    };
    expect(assessActive(blind, null, monitor)).toMatchObject({ bad: false, inconclusive: false });
    expect(assessActive({ ...blind, witness: "silent" }, null, monitor)).toMatchObject({ bad: true });
    expect(assessActive({ ...blind, witness: "unknown" }, null, monitor)).toMatchObject({ bad: false, inconclusive: true });
    expect(assessActive({ ...blind, witness: "fenced" }, null, monitor)).toMatchObject({ bad: false, inconclusive: true });
  });

  it("recovery rules per state", () => {
    expect(recoveryAction("PRECONDITIONS")).toBe("abandon");
    expect(recoveryAction("FENCING")).toBe("rollback");
    for (const s of ["DRAINING", "CONTINUITY", "ACTIVATING", "VERIFYING"] as const) expect(recoveryAction(s)).toBe("resume");
    for (const s of ["DONE", "FAILED", "ROLLED_BACK", "REFUSED"] as const) expect(recoveryAction(s)).toBe("none");
  });
});

describe("service probe", () => {
  it("runs argv without a shell, reads systemctl's exit codes, kills on timeout", async () => {
    expect(interpretStatus(await runCommand(["sh", "-c", "echo active"], 2000))).toMatchObject({ state: "active", detail: "active" });
    expect(interpretStatus(await runCommand(["sh", "-c", "echo failed; exit 3"], 2000))).toMatchObject({ state: "inactive", detail: "failed" });
    expect(interpretStatus(await runCommand(["sh", "-c", "echo 'ssh: connect to host x: No route' >&2; exit 255"], 2000))).toMatchObject({
      state: "unknown",
      detail: "exit 255: ssh: connect to host x: No route",
    });
    const started = Date.now();
    const slow = await runCommand(["sh", "-c", "sleep 5"], 200);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(interpretStatus(slow)).toMatchObject({ state: "unknown" });
    expect(slow.timedOut).toBe(true);
    expect(interpretStatus(await runCommand(["/nonexistent/systemctl"], 1000)).detail).toMatch(/could not start: ENOENT/);
  });
});

describe("webhook alerts", () => {
  it("POSTs JSON, retries on 5xx and timeouts, gives up on 4xx", async () => {
    const app = Fastify({ logger: false });
    const got: unknown[] = [];
    let failures = 2;
    app.post("/hook", async (req, reply) => {
      got.push(req.body);
      if (failures-- > 0) return reply.code(503).send();
      return { ok: true };
    });
    app.post("/gone", async (_req, reply) => reply.code(404).send());
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const w = new WebhookSender({ url: `${url}/hook`, timeoutMs: 1000, retries: 3 }, async () => {});
      expect(await w.send({ event: "failover_done" })).toMatchObject({ delivered: true, attempts: 3 });
      expect(got).toEqual([{ event: "failover_done" }, { event: "failover_done" }, { event: "failover_done" }]);
      const gone = new WebhookSender({ url: `${url}/gone`, timeoutMs: 1000, retries: 3 }, async () => {});
      expect(await gone.send({ event: "x" })).toMatchObject({ delivered: false, attempts: 4, lastError: "HTTP 404" });
    } finally {
      await app.close();
    }
  });
});

describe("the independent checker", () => {
  const sig = (seq: number, clientId: string, over: Partial<FeedSignature>): FeedSignature => ({
    seq,
    clientId,
    pubkey: "0xaa",
    type: "ATTESTATION",
    signingRoot: `0x${seq}`,
    at: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
    ...over,
  });
  it("finds double blocks, double votes, surrounds, and keys that move between clients too often", () => {
    const r = check(
      [
        sig(1, "a", { type: "BLOCK_V2", slot: "8" }),
        sig(2, "b", { type: "BLOCK_V2", slot: "8" }),
        sig(3, "a", { sourceEpoch: "1", targetEpoch: "2" }),
        sig(4, "b", { sourceEpoch: "1", targetEpoch: "2" }),
        sig(5, "a", { sourceEpoch: "0", targetEpoch: "5" }),
        sig(6, "a", { type: "SYNC_COMMITTEE_MESSAGE", slot: "9" }),
      ],
      1,
    );
    expect(r.slashable).toHaveLength(4); // 0→5 surrounds both 1→2 votes
    expect(r.slashable.join("\n")).toMatch(/double block[\s\S]*double vote[\s\S]*surround[\s\S]*surround/);
    expect(r.overlaps[0]).toMatch(/moved between clients 4 times/);
  });
  it("accepts a clean hand-over and repeats of the same message", () => {
    const r = check(
      [
        sig(1, "a", { sourceEpoch: "1", targetEpoch: "2", signingRoot: "0x1" }),
        sig(2, "b", { sourceEpoch: "1", targetEpoch: "2", signingRoot: "0x1" }),
        sig(3, "b", { sourceEpoch: "2", targetEpoch: "3" }),
      ],
      1,
    );
    expect(r).toMatchObject({ slashable: [], overlaps: [] });
  });
});
