// The operator commands through the real binary (bin/vigil.js → dist), against the real signer and the
// simulated stacks, without a daemon: status, failover (dry run, refused, done, failed), failback, fence,
// history — and their exit codes.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../common/index.js";
import { admin, createSimEnv, sleep, SLOT_MS, waitFor, type SimEnv } from "./sim/harness.js";
import type { ClientsResponse } from "../../admin-api/index.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
let env: SimEnv;

function vigil(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("node", [VIGIL, ...args, "--config", env.configFile], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const enabled = async () => (await admin<ClientsResponse>(env, "/admin/v1/clients")).body.clients.filter((c) => c.enabled).map((c) => c.id);

beforeAll(async () => {
  env = await createSimEnv("cli", { maxHandovers: 2 });
  env.vcs.primary.start();
  await waitFor("primary signing", () => env.vcs.primary.signedCount() > 3, 5_000);
});
afterAll(async () => {
  await env?.destroy();
});

describe("vigil status / failover / failback / fence / history", () => {
  it("status --json on a fresh signer; fence puts the standby where it belongs", async () => {
    const s = await vigil(["status", "--json"]);
    expect(s.code).toBe(0);
    const st = JSON.parse(s.stdout);
    expect(st.activeStack).toBe("primary");
    expect(st.daemon).toBeNull();
    expect(st.stacks.primary.client.enabled).toBe(true);
    expect(st.stacks.primary.client.lastSignature).toMatchObject({ pubkey: expect.stringMatching(/^0x/) });
    expect(st.stacks.primary.service.state).toBe("active");
    expect(st.stacks.backup.service.state).toBe("inactive");
    const f = await vigil(["fence", "backup-vc"]);
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/backup-vc fenced at signer main \(generation 1\)/);
    expect(await enabled()).toEqual(["primary-vc"]);
    const text = await vigil(["status"]);
    expect(text.stdout).toMatch(/^primary \(active\): client primary-vc at signer main\n {2}signer: ENABLED/m);
    expect(text.stdout).toMatch(/^backup: client backup-vc at signer main\n {2}signer: fenced \(generation 1\)/m);
    expect(text.stdout).not.toContain(env.adminToken);
  });

  it("usage errors: unknown stack (2), unknown client (5), no terminal and no --yes (2)", async () => {
    expect((await vigil(["failover", "--to", "nowhere"])).code).toBe(EXIT_CODES.usage);
    expect((await vigil(["fence", "nobody"])).code).toBe(EXIT_CODES.notFound);
    const noTty = await vigil(["failover"]);
    expect(noTty.code).toBe(EXIT_CODES.usage);
    expect(noTty.stderr).toMatch(/pass --yes/);
    expect(await enabled()).toEqual(["primary-vc"]);
  });

  it("--dry-run prints the plan and each precondition and changes nothing; an unhealthy backup is refused (20)", async () => {
    const dry = await vigil(["failover", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/1\. preconditions[\s\S]*2\. fence primary[\s\S]*6\. verify/);
    expect(dry.stdout).toMatch(/\[ok\] backup beacon node healthy and synced/);
    expect(dry.stdout).toMatch(/dry run: nothing was changed/);
    env.beacons.backup.set({ elOffline: true, peers: 1 });
    const refused = await vigil(["failover", "--yes"]);
    expect(refused.code).toBe(EXIT_CODES.failoverRefused);
    expect(refused.stdout).toMatch(/\[FAIL\] backup beacon node healthy and synced: execution client offline; 1 peers < 5/);
    expect(refused.stderr).toMatch(/PRECONDITIONS_FAILED/);
    expect(await enabled()).toEqual(["primary-vc"]);
    env.beacons.backup.set({ elOffline: false, peers: 50 });
  });

  it("failover --yes moves signing to the backup (0); failback --yes brings it back (0)", async () => {
    const f = await vigil(["failover", "--yes"]);
    expect(f.code, f.stderr + f.stdout).toBe(0);
    expect(f.stdout).toMatch(/FENCING[\s\S]*DRAINING[\s\S]*CONTINUITY[\s\S]*ACTIVATING[\s\S]*VERIFYING[\s\S]*DONE/);
    expect(f.stdout).toMatch(/failover done: backup is active and signing/);
    expect(await enabled()).toEqual(["backup-vc"]);
    expect(env.vcs.primary.running).toBe(false); // its stop command ran
    await sleep(2 * SLOT_MS);
    const b = await vigil(["failback", "--yes"]);
    expect(b.code, b.stderr + b.stdout).toBe(0);
    expect(b.stdout).toMatch(/failback: backup → primary/);
    expect(await enabled()).toEqual(["primary-vc"]);
    expect(env.vcs.backup.running).toBe(false);
    expect(JSON.parse((await vigil(["status", "--json"])).stdout).activeStack).toBe("primary");
  });

  it("a backup that never signs → failed (21), the primary stays fenced", async () => {
    await waitFor("primary signing again", () => env.vcs.primary.running && env.vcs.primary.signedCount() > 0, 5_000);
    await env.vcs.backup.close(); // its host is gone: the start command fails, nothing will sign
    const f = await vigil(["failover", "--yes"]);
    expect(f.code).toBe(EXIT_CODES.failoverFailed);
    expect(f.stderr).toMatch(/VERIFY_TIMEOUT/);
    expect(await enabled()).toEqual(["backup-vc"]);
  });

  it("history lists every failover and the audit log", async () => {
    const h = await vigil(["history", "--json"]);
    expect(h.code).toBe(0);
    const j = JSON.parse(h.stdout);
    expect(j.failovers.map((f: { state: string; from: string }) => `${f.from}:${f.state}`)).toEqual(["primary:FAILED", "backup:DONE", "primary:DONE"]);
    expect(j.audit.some((a: { kind: string; message: string }) => a.kind === "fence" && /operator fenced backup-vc/.test(a.message))).toBe(true);
    expect(j.audit.some((a: { kind: string; message: string }) => a.kind === "operator" && /refused/.test(a.message))).toBe(true);
    const text = await vigil(["history"]);
    expect(text.stdout).toMatch(/#1 .* operator primary → backup DONE gen 2/);
    const report = await env.feed();
    expect(report.slashable).toEqual([]);
    expect(report.overlaps).toEqual([]);
  });
});
