// Test helper: a fake systemd notify socket. The receiving end is a tiny python3 process (AF_UNIX,
// SOCK_DGRAM) rather than the addon under test, so the test checks the wire format against an independent
// implementation, as systemd would receive it.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

const RECEIVER = `
import json, os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
print(json.dumps({"listening": path}), flush=True)
while True:
    data, _ = s.recvfrom(65536)
    print(json.dumps({"message": data.decode("utf-8", "replace"), "at": time.time() * 1000}), flush=True)
`;

export interface FakeNotifySocket {
  path: string;
  /** Every datagram received so far, in order (each is "KEY=VALUE\\nKEY=VALUE…"). */
  messages: string[];
  /** The same, each with its arrival time (ms since the epoch, taken by the receiver). */
  timed: { at: number; message: string }[];
  /** Every assignment received so far, in order. */
  assignments(): string[];
  /** Resolves when an assignment matching `predicate` arrives (or has arrived), rejects after `timeoutMs`. */
  waitFor(predicate: (assignment: string) => boolean, timeoutMs?: number, what?: string): Promise<string>;
  close(): void;
}

export async function fakeNotifySocket(): Promise<FakeNotifySocket> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-notify-"));
  const socketPath = path.join(dir, "notify.sock");
  const child: ChildProcess = spawn("python3", ["-c", RECEIVER, socketPath], { stdio: ["ignore", "pipe", "inherit"] });
  const messages: string[] = [];
  const timed: { at: number; message: string }[] = [];
  const waiters = new Set<() => void>();
  const assignments = () => messages.flatMap((m) => m.split("\n"));
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`notify receiver exited early (${code})`)));
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      const parsed = JSON.parse(line) as { listening?: string; message?: string; at?: number };
      if (parsed.listening) resolve();
      if (parsed.message !== undefined) {
        messages.push(parsed.message);
        timed.push({ at: parsed.at ?? Date.now(), message: parsed.message });
        for (const w of waiters) w();
      }
    });
  });
  return {
    path: socketPath,
    messages,
    timed,
    assignments,
    waitFor(predicate, timeoutMs = 10_000, what = "a matching notification") {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = assignments().find(predicate);
          if (hit === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${what} within ${timeoutMs} ms; received: ${JSON.stringify(assignments().slice(-30))}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    close() {
      child.removeAllListeners("exit");
      child.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
