// Slowloris: the signer runs as its own process with 256 file descriptors while more trickling connections than
// that are opened (headers a byte at a time, bodies a byte at a time, nothing at all). A validator client's signing
// requests must still succeed within a deadline, the timeouts must close the tricklers, and the process must stay up.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { GVR, interopPubkey, randaoBody, tokenWithInteropKeys } from "./harness.js";

const work = tempDir("vigil-signer-slowloris-");
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/cli/main.js");
const FD_LIMIT = 256;
const LIMITS = { maxConnections: 64, headersTimeoutMs: 1000, requestTimeoutMs: 2000, idleTimeoutMs: 3000 };
let token: TestToken;
let child: ChildProcess;
let url: URL;
let stderr = "";

beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-slowloris", 1);
  const config = path.join(work, "signer.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      network: "minimal-devnet",
      genesisValidatorsRoot: GVR,
      listen: { host: "127.0.0.1", port: 0 },
      dataDir: path.join(work, "data"),
      hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
      limits: LIMITS,
      logLevel: "warn",
    }),
  );
  child = spawn("prlimit", [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, process.execPath, CLI, "signer", "start", "--config", config], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  url = new URL(
    await new Promise<string>((resolve, reject) => {
      child.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
        const m = /ready: \d+ key\(s\) on (\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code) => reject(new Error(`signer exited ${code}: ${stderr}`)));
    }),
  );
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
  token?.destroy();
});

/** One signing request on a fresh connection (as a client whose pooled connection was closed would); status or 0. */
function signOnce(epoch: number, deadlineMs: number): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const body = JSON.stringify(randaoBody(epoch));
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: `/api/v1/eth2/sign/${interopPubkey(0)}`,
        agent: false,
        timeout: deadlineMs,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
    req.end(body);
  });
}

type Trickle = "headers" | "body" | "silent";

/** A connection that sends a request a byte every 200 ms (or nothing); resolves with how long the server kept it. */
function trickler(kind: Trickle): { closed: Promise<number> } {
  const opened = performance.now();
  const socket = net.connect(Number(url.port), url.hostname);
  const head = `POST /api/v1/eth2/sign/${interopPubkey(0)} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n`;
  let pending = kind === "headers" ? head : kind === "body" ? `{${" ".repeat(998)}}` : "";
  let timer: NodeJS.Timeout | undefined;
  socket.on("connect", () => {
    if (kind === "body") socket.write(head);
    timer = setInterval(() => {
      if (pending.length === 0 || socket.destroyed) return;
      socket.write(pending[0]!);
      pending = pending.slice(1);
    }, 200);
  });
  socket.on("error", () => {});
  socket.on("data", () => {}); // a 408 or 400 before the close is fine
  return {
    closed: new Promise((resolve) =>
      socket.once("close", () => {
        clearInterval(timer);
        resolve(performance.now() - opened);
      }),
    ),
  };
}

describe("slowloris flood with a lowered fd limit", () => {
  it("a validator client's idle keep-alive connection outlives the header timeout (only idleTimeoutMs closes it)", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sign = (epoch: number) =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const body = JSON.stringify(randaoBody(epoch));
        const req = http.request(
          {
            host: url.hostname,
            port: url.port,
            method: "POST",
            path: `/api/v1/eth2/sign/${interopPubkey(0)}`,
            agent,
            headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    try {
      expect(await sign(1)).toEqual({ status: 200, reused: false });
      await new Promise((r) => setTimeout(r, LIMITS.headersTimeoutMs + 700));
      expect(await sign(2)).toEqual({ status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  });

  it("more trickling connections than file descriptors: the validator client still signs, tricklers are closed, the signer stays up", async () => {
    const kinds: Trickle[] = ["headers", "body", "silent"];
    const closed: Promise<number>[] = [];
    const signs: Promise<{ status: number; ms: number }>[] = [];
    // 3 s of flood: 40 new trickling connections every 100 ms (1,200 in all, 4.7x the fd limit), and a signing
    // request from the legitimate client every 250 ms.
    for (let tick = 0; tick < 30; tick++) {
      for (let i = 0; i < 40; i++) closed.push(trickler(kinds[(tick + i) % 3]!).closed);
      if (tick % 2 === 1 || tick === 0) signs.push(signOnce(100 + tick, 3000));
      await new Promise((r) => setTimeout(r, 100));
    }
    const replies = await Promise.all(signs);
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    expect(Math.max(...replies.map((r) => r.ms))).toBeLessThan(3000);

    // Every trickler is closed by the server (budget eviction or a timeout) within the request timeout plus slack,
    // although none of them ever stopped sending.
    const lifetimes = await Promise.all(closed);
    expect(lifetimes.length).toBe(1200);
    expect(Math.max(...lifetimes)).toBeLessThan(LIMITS.requestTimeoutMs + 2500);

    expect(child.exitCode).toBeNull();
    expect((await signOnce(1000, 3000)).status).toBe(200);
    expect(stderr).not.toMatch(/EMFILE/);
  }, 60_000);
});
