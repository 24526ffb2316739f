/**
 * Concurrency and crash safety of check-and-record, on both backends (a real SQLite file, a real PostgreSQL
 * server: test/helpers/backends.ts): many concurrent conflicting callers (one process, then two processes) →
 * exactly one allowed; a recording process SIGKILLed at random moments → every "allowed" it reported is
 * recorded.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SlashingProtectionError, type SlashingDbLocation } from "../../slashing-db/index.js";
import { testBackends } from "../helpers/backends.js";

const CHILD = path.resolve(__dirname, "../../dist/test/slashing-db/child-recorder.js");
const GVR = `0x${"22".repeat(32)}`;
const PUBKEY = `0x${"c3".repeat(48)}`;
const backends = testBackends();
const run = promisify(execFile);
const root = (i: number) => `0x${i.toString(16).padStart(64, "0")}`;

describe.each(backends.map((b) => [b.name, b] as const))("%s", (_name, backend) => {
  describe("concurrent conflicting requests", () => {
    it("500 concurrent attestations for one key and target: exactly one allowed, the rest DOUBLE_VOTE", async () => {
      const db = await backend.open(GVR);
      const results = await Promise.allSettled(Array.from({ length: 500 }, (_, i) => db.att(PUBKEY, 4, 5, root(i + 1))));
      const allowed = results.filter((r) => r.status === "fulfilled");
      expect(allowed).toHaveLength(1);
      for (const r of results) {
        if (r.status === "rejected") {
          expect(r.reason).toBeInstanceOf(SlashingProtectionError);
          expect(r.reason.code).toBe("DOUBLE_VOTE");
        }
      }
      await db.close();
    });

    it("500 concurrent block proposals at one slot: exactly one allowed", async () => {
      const db = await backend.open(GVR);
      const results = await Promise.allSettled(Array.from({ length: 500 }, (_, i) => db.block(PUBKEY, 77, root(i + 1))));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      await db.close();
    });

    it("concurrent surround votes in both directions: never both sides allowed", async () => {
      const db = await backend.open(GVR);
      // (2, 9) surrounds (3, 8); (4, 7) is surrounded by both.
      const votes: [number, number][] = [
        [3, 8],
        [2, 9],
        [4, 7],
        [3, 8],
      ];
      const results = await Promise.allSettled(votes.map(([s, t], i) => db.att(PUBKEY, s, t, root(100 + i))));
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "rejected"]);
      await db.close();
    });

    it("two processes on one database, 300 conflicting requests each: still exactly one of each kind", async () => {
      const location = await backend.freshLocation();
      // Create, pin and register the validator before the race: a validator's first insert would serialise the
      // two processes by itself, and this test is about what serialises them afterwards.
      const setup = await backend.open(GVR, location);
      await setup.att(PUBKEY, 1, 2, root(1));
      await setup.block(PUBKEY, 1, root(1));
      await setup.close();
      const startAt = String(Date.now() + 1500);
      // Each process votes from its own source, so the two double votes are different rows: only the judging under
      // the validator's lock, not a unique key, can refuse the second.
      const children = [
        ["A", "10"],
        ["B", "9"],
      ].map(([tag, source]) => run("node", [CHILD, "conflict", JSON.stringify(location), GVR, PUBKEY, "300", startAt, tag!, source!]));
      const outputs = (await Promise.all(children)).map((c) => JSON.parse(c.stdout) as { attestations: number; blocks: number });
      expect(outputs.reduce((n, o) => n + o.attestations, 0)).toBe(1);
      expect(outputs.reduce((n, o) => n + o.blocks, 0)).toBe(1);
      const db = await backend.open(GVR, location);
      const rows = await db.rows();
      expect(rows.reduce((n, r) => n + r.atts.length, 0)).toBe(2);
      expect(rows.reduce((n, r) => n + r.blocks.length, 0)).toBe(2);
      await db.close();
    });
  });

  describe("crash safety", () => {
    it("every check answered 'allowed' before a SIGKILL is in the database after reopening", async () => {
      const location = await backend.freshLocation();
      await (await backend.open(GVR, location)).close();
      const validators = 64;
      let firstTarget = 1;
      let totalAcknowledged = 0;
      for (let round = 0; round < 6; round++) {
        const acknowledged = await recordUntilKilled(location, validators, firstTarget, 150 + Math.floor(Math.random() * 400));
        expect(acknowledged.length, "the child recorded something before it was killed").toBeGreaterThan(0);
        totalAcknowledged += acknowledged.length;
        const db = await backend.open(GVR, location);
        // An acknowledged record is durable iff re-signing it is an exact repeat: checked one by one for a sample
        // (a dry run per check costs round trips on PostgreSQL), and for all of them against the stored rows.
        const stored = new Set((await db.rows()).flatMap((r) => r.atts.map((a) => `${a.source} ${a.target} ${a.root}`)));
        for (const [i, { validator, target }] of acknowledged.entries()) {
          expect(stored.has(`${target - 1} ${target} ${rootOf(validator, target)}`), `validator ${validator} target ${target}`).toBe(true);
          if (i % 16 === 0) expect(await db.attVerdict(pubkeyOf(validator), target - 1, target, rootOf(validator, target))).toBe("repeat");
        }
        firstTarget = Math.max(...acknowledged.map((a) => a.target)) + 2; // past anything the child may have written unacknowledged
        await db.close();
      }
      expect(totalAcknowledged).toBeGreaterThan(1000);
    });
  });
});

function recordUntilKilled(
  location: SlashingDbLocation,
  validators: number,
  firstTarget: number,
  killAfterMs: number,
): Promise<{ validator: number; target: number }[]> {
  return new Promise((resolve, reject) => {
    const child = spawn("node", [CHILD, "load", JSON.stringify(location), GVR, String(validators), String(firstTarget)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("error", reject);
    // Start the clock once the child is actually recording, then kill it mid-flight.
    child.stdout.once("data", () => setTimeout(() => child.kill("SIGKILL"), killAfterMs));
    child.on("close", () => {
      const lines = out.split("\n").filter((l) => l.startsWith("ok "));
      resolve(lines.map((l) => ({ validator: Number(l.split(" ")[1]), target: Number(l.split(" ")[2]) })));
    });
  });
}

// Same derivations as the child (kept here so the test states what it expects independently).
const rootOf = (...parts: unknown[]) => `0x${createHash("sha256").update(parts.join("/")).digest("hex")}`;
const pubkeyOf = (i: number) => `0x${createHash("sha256").update(`validator-${i}`).digest("hex").padEnd(96, "0")}`;
