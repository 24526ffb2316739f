import { afterEach, describe, expect, it } from "vitest";
import {
  loadUnixDgram,
  startSystemdWatchdogPinger,
  SystemdNotifier,
  systemdWatchdogIntervalMs,
  type SystemdWatchdogPinger,
} from "../../common/systemd-notify.js";
import { fakeNotifySocket, type FakeNotifySocket } from "../helpers/notify-socket.js";

const dgram = loadUnixDgram();
const missing = "error" in dgram ? dgram.error : undefined;
if (missing) console.warn(`SKIPPING the notify-socket tests: ${missing}. Add "unix-dgram": "2.0.7" to dependencies.`);

describe("systemdWatchdogIntervalMs", () => {
  it("is half of WATCHDOG_USEC, in ms, when meant for this process", () => {
    expect(systemdWatchdogIntervalMs({ WATCHDOG_USEC: "30000000" }, 42)).toBe(15_000);
    expect(systemdWatchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42" }, 42)).toBe(15_000);
    expect(systemdWatchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "7" }, 42)).toBeUndefined();
    expect(systemdWatchdogIntervalMs({}, 42)).toBeUndefined();
    expect(systemdWatchdogIntervalMs({ WATCHDOG_USEC: "0" }, 42)).toBeUndefined();
    expect(systemdWatchdogIntervalMs({ WATCHDOG_USEC: "abc" }, 42)).toBeUndefined();
  });
});

describe("SystemdNotifier without a socket", () => {
  it("is a silent no-op outside systemd", async () => {
    const sent: string[] = [];
    const n = new SystemdNotifier({ env: {}, transport: async (_p, m) => void sent.push(m.toString()) });
    expect(n.enabled).toBe(false);
    await n.ready("x");
    await n.status("y");
    expect(sent).toEqual([]);
  });

  it("refuses an abstract socket with a clear message instead of sending to the wrong place", () => {
    const logs: string[] = [];
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: "@/org/freedesktop/systemd1/notify" }, log: (_l, m) => logs.push(m) });
    expect(n.enabled).toBe(false);
    expect(logs.join("\n")).toMatch(/abstract socket/);
  });

  it("never throws when sending fails, and reports the failure once per streak", async () => {
    const logs: string[] = [];
    const n = new SystemdNotifier({
      env: { NOTIFY_SOCKET: "/nonexistent/notify" },
      transport: async () => Promise.reject(new Error("send -2")),
      log: (_l, m) => logs.push(m),
    });
    await n.ready();
    await n.watchdog();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/cannot send to \/nonexistent\/notify/);
  });
});

describe.skipIf(missing !== undefined)("SystemdNotifier against a fake NOTIFY_SOCKET", () => {
  let sock: FakeNotifySocket;
  let pinger: SystemdWatchdogPinger | undefined;
  afterEach(() => {
    pinger?.stop();
    pinger = undefined;
    sock?.close();
  });

  it("sends READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 as sd_notify datagrams", async () => {
    sock = await fakeNotifySocket();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path } });
    expect(n.enabled).toBe(true);
    await n.status("loading keys 3/8");
    await n.ready("serving 8 keys");
    await n.watchdog();
    await n.status("two\nlines");
    await n.stopping();
    await sock.waitFor((a) => a === "STOPPING=1");
    expect(sock.messages).toEqual(["STATUS=loading keys 3/8", "READY=1\nSTATUS=serving 8 keys", "WATCHDOG=1", "STATUS=two lines", "STOPPING=1"]);
  });

  it("pings at the interval while the liveness check passes, and stops pinging when it fails", async () => {
    sock = await fakeNotifySocket();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: "200000" } });
    expect(n.watchdogIntervalMs).toBe(100);
    let healthy = true;
    const unhealthy: string[] = [];
    pinger = startSystemdWatchdogPinger({ notifier: n, liveness: () => healthy, onUnhealthy: (r) => unhealthy.push(r) });
    expect(pinger?.intervalMs).toBe(100);
    await new Promise((r) => setTimeout(r, 650));
    const pingsWhileHealthy = sock.assignments().filter((a) => a === "WATCHDOG=1").length;
    expect(pingsWhileHealthy).toBeGreaterThanOrEqual(4);
    expect(pingsWhileHealthy).toBeLessThanOrEqual(8);

    healthy = false;
    await sock.waitFor((a) => a.startsWith("STATUS=unhealthy"), 2_000, "unhealthy status");
    const before = sock.assignments().filter((a) => a === "WATCHDOG=1").length;
    await new Promise((r) => setTimeout(r, 500));
    expect(sock.assignments().filter((a) => a === "WATCHDOG=1").length).toBe(before);
    expect(unhealthy[0]).toBe("liveness check failed");

    healthy = true;
    await new Promise((r) => setTimeout(r, 300));
    expect(sock.assignments().filter((a) => a === "WATCHDOG=1").length).toBeGreaterThan(before);
  });

  it("withholds pings while the liveness check hangs or throws", async () => {
    sock = await fakeNotifySocket();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: "200000" } });
    let mode: "hang" | "throw" = "hang";
    const reasons: string[] = [];
    pinger = startSystemdWatchdogPinger({
      notifier: n,
      liveness: () => (mode === "hang" ? new Promise<void>(() => {}) : Promise.reject(new Error("database is locked"))),
      onUnhealthy: (r) => reasons.push(r),
    });
    await new Promise((r) => setTimeout(r, 400));
    mode = "throw";
    await new Promise((r) => setTimeout(r, 300));
    expect(sock.assignments().filter((a) => a === "WATCHDOG=1")).toEqual([]);
    expect(reasons.some((r) => /did not answer within 50 ms/.test(r))).toBe(true);
    expect(reasons.some((r) => /database is locked/.test(r))).toBe(true);
  });

  it("withholds the ping after the event loop stalls", async () => {
    sock = await fakeNotifySocket();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: "200000" } });
    const reasons: string[] = [];
    pinger = startSystemdWatchdogPinger({ notifier: n, liveness: () => true, onUnhealthy: (r) => reasons.push(r) });
    await sock.waitFor((a) => a === "WATCHDOG=1", 2_000, "first ping");
    const until = Date.now() + 400;
    while (Date.now() < until); // wedge the event loop
    const pingsAtStall = sock.assignments().filter((a) => a === "WATCHDOG=1").length;
    await sock.waitFor((a) => a.startsWith("STATUS=unhealthy: event loop stalled"), 2_000, "stall status");
    expect(reasons[0]).toMatch(/event loop stalled for \d+ ms \(limit 50 ms\)/);
    // the tick right after the stall sent no ping; later ones resume
    await new Promise((r) => setTimeout(r, 350));
    expect(sock.assignments().filter((a) => a === "WATCHDOG=1").length).toBeGreaterThan(pingsAtStall);
  });

  it("does not start without WATCHDOG_USEC", async () => {
    sock = await fakeNotifySocket();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path } });
    expect(startSystemdWatchdogPinger({ notifier: n, liveness: () => true })).toBeUndefined();
  });
});
