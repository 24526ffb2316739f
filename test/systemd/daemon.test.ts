// runDaemon() end to end in a child process, as systemd runs it: READY=1 only after start-up, STATUS= lines,
// WATCHDOG=1 while healthy, STOPPING=1 and a clean exit 0 on SIGTERM with in-flight work committed, and an
// immediate exit on a second signal.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { loadUnixDgram } from "../../common/systemd-notify.js";
import { openSlashingDb } from "../../slashing-db/index.js";
import { fakeNotifySocket, type FakeNotifySocket } from "../helpers/notify-socket.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE = path.join(ROOT, "dist/test/systemd/daemon-fixture.js");
const dgram = loadUnixDgram();
const missing = "error" in dgram ? dgram.error : undefined;

interface Child {
  proc: ChildProcess;
  lines: string[];
  waitLine(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startFixture(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [FIXTURE], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  readline.createInterface({ input: proc.stdout! }).on("line", (l) => {
    lines.push(l);
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  return {
    proc,
    lines,
    exited,
    waitLine(re, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => re.test(l));
          if (hit === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; last lines: ${JSON.stringify(lines.slice(-20))}`)),
          timeoutMs,
        );
        waiters.add(check);
        check();
      });
    },
  };
}

describe.skipIf(missing !== undefined)("runDaemon under a fake systemd", () => {
  let sock: FakeNotifySocket | undefined;
  let child: Child | undefined;
  let dir: string | undefined;
  afterEach(() => {
    child?.proc.kill("SIGKILL");
    sock?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    child = sock = dir = undefined;
  });

  async function setup(extra: Record<string, string> = {}) {
    if (!fs.existsSync(FIXTURE)) throw new Error(`${FIXTURE} is missing: run tsc first (npm test does)`);
    sock = await fakeNotifySocket();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-daemon-"));
    const db = path.join(dir, "slashing.sqlite");
    child = startFixture({ NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: "400000", FIXTURE_DB: db, ...extra });
    return { sock, child, db };
  }

  it("reports start-up progress, then READY=1, pings while healthy, and on SIGTERM commits in-flight work and exits 0", async () => {
    const { sock, child, db } = await setup({ FIXTURE_INFLIGHT_MS: "300" });
    await sock.waitFor((a) => a === "READY=1", 10_000, "READY=1");
    const all = sock.assignments();
    // progress lines come before READY=1, and READY=1 only after start() resolved
    expect(all.indexOf("STATUS=loading keys 2/2")).toBeLessThan(all.indexOf("READY=1"));
    expect(child.lines).toContain("started");
    expect(all).toContain("STATUS=fixture ready: 2 keys");
    await sock.waitFor((a) => a === "WATCHDOG=1", 2_000, "WATCHDOG=1");
    await sock.waitFor((a) => /^STATUS=fixture running: \d+ in flight$/.test(a), 2_000, "running status");
    await child.waitLine(/^committed \d+$/);

    child.proc.kill("SIGTERM");
    const { code, signal } = await child.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(sock.assignments()).toContain("STOPPING=1");
    const closing = child.lines.find((l) => l.startsWith("closing with"))!;
    const inFlightAtStop = Number(/closing with (\d+) in flight/.exec(closing)![1]);
    expect(inFlightAtStop).toBeGreaterThan(0); // the test really stopped it mid-work
    expect(child.lines.at(-2)).toBe("closed");
    // Every request the daemon accepted was committed before it exited, and nothing failed.
    const committed = child.lines.filter((l) => l.startsWith("committed ")).map((l) => Number(l.split(" ")[1]));
    expect(child.lines.filter((l) => l.startsWith("failed"))).toEqual([]);
    const reopened = openSlashingDb(db);
    try {
      const blocks = reopened.exportInterchange().data.flatMap((d) => d.signed_blocks.map((b) => Number(b.slot)));
      expect(blocks.sort((a, b) => a - b)).toEqual(committed.sort((a, b) => a - b));
    } finally {
      reopened.close();
    }
  });

  it("stops pinging when the database check fails, so systemd would restart it", async () => {
    const { sock, child } = await setup();
    await sock.waitFor((a) => a === "WATCHDOG=1", 10_000, "first ping");
    child.proc.kill("SIGUSR1"); // the database goes away underneath the daemon
    await sock.waitFor((a) => a === "STATUS=unhealthy: liveness check failed; withholding watchdog ping", 3_000, "unhealthy status");
    const pings = sock.assignments().filter((a) => a === "WATCHDOG=1").length;
    await new Promise((r) => setTimeout(r, 1_000)); // 2.5 × WatchdogSec: systemd would have killed it
    expect(sock.assignments().filter((a) => a === "WATCHDOG=1").length).toBe(pings);
  });

  it("sends no ping while the event loop is wedged", async () => {
    const { sock, child } = await setup();
    await sock.waitFor((a) => a === "WATCHDOG=1", 10_000, "first ping");
    child.proc.kill("SIGUSR2"); // blocks the event loop for 3 s
    await sock.waitFor((a) => a.startsWith("STATUS=unhealthy: event loop stalled"), 6_000, "stall status");
    await new Promise((r) => setTimeout(r, 500)); // pings resume after the stall
    const pings = sock.timed.filter((t) => t.message === "WATCHDOG=1").map((t) => t.at);
    const gaps = pings.slice(1).map((at, i) => at - pings[i]!);
    // WatchdogSec is 0.4 s here: a gap of 3 s means systemd would have killed and restarted the daemon.
    expect(Math.max(...gaps)).toBeGreaterThan(2_900);
    // and the first tick after the stall still withheld its ping (the stall was seen, not just survived)
    const stallAt = sock.timed.find((t) => t.message.startsWith("STATUS=unhealthy: event loop stalled"))!.at;
    const lastPingBeforeStatus = Math.max(...pings.filter((at) => at <= stallAt));
    expect(stallAt - lastPingBeforeStatus).toBeGreaterThan(2_900);
  });

  it("a second signal during shutdown exits at once, and the database stays consistent", async () => {
    const { sock, child, db } = await setup({ FIXTURE_HANG_CLOSE: "1" });
    await sock.waitFor((a) => a === "READY=1", 10_000, "READY=1");
    await child.waitLine(/^committed \d+$/);
    child.proc.kill("SIGTERM");
    await child.waitLine(/^closing with/);
    const t = Date.now();
    child.proc.kill("SIGTERM");
    const { code } = await child.exited;
    expect(code).toBe(143);
    expect(Date.now() - t).toBeLessThan(2_000);
    const reopened = openSlashingDb(db); // opens (integrity intact) and holds every acknowledged commit
    try {
      const committed = child.lines.filter((l) => l.startsWith("committed ")).length;
      expect(reopened.stats().blocks).toBeGreaterThanOrEqual(committed);
    } finally {
      reopened.close();
    }
  });

  it("a SIGTERM during start-up stops cleanly without ever sending READY=1", async () => {
    const { sock, child } = await setup();
    await sock.waitFor((a) => a === "STATUS=loading keys 0/2", 10_000, "first status");
    child.proc.kill("SIGTERM");
    const { code } = await child.exited;
    expect(code).toBe(0);
    expect(sock.assignments()).not.toContain("READY=1");
    expect(sock.assignments()).toContain("STOPPING=1");
  });
});
