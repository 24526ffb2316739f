/**
 * A separate process that drives the slashing database, for the multi-process and crash-safety tests.
 * Compiled to dist/ by `tsc`; the tests spawn it with node. LOCATION is a SlashingDbLocation as JSON (a SQLite
 * file, or a PostgreSQL URL with a password *file*: nothing secret on the command line).
 *
 *   conflict LOCATION GVR PUBKEY N START_AT_MS TAG SOURCE
 *       at START_AT_MS, submits N conflicting attestations (SOURCE → 11) and N conflicting blocks (same slot)
 *       at once; prints {"attestations":k,"blocks":m}, how many were allowed.
 *   load LOCATION GVR VALIDATORS FIRST_TARGET
 *       records attestations for VALIDATORS keys, 64 at a time, with rising targets, forever; after each one
 *       is answered "allowed" writes "ok <validator> <target>" to stdout (synchronously) — until killed.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import type { SlashingDbLocation } from "../../slashing-db/index.js";
import { openHandle } from "../helpers/backend-handle.js";

const [mode, locationJson, gvr, ...rest] = process.argv.slice(2);
const location = JSON.parse(locationJson ?? "null") as SlashingDbLocation;

const rootOf = (...parts: unknown[]) => `0x${createHash("sha256").update(parts.join("/")).digest("hex")}`;
export const pubkeyOf = (i: number) => `0x${createHash("sha256").update(`validator-${i}`).digest("hex").padEnd(96, "0")}`;

async function conflict(): Promise<void> {
  const [pubkey, n, startAt, tag, source] = rest as [string, string, string, string, string];
  const db = await openHandle(location, gvr);
  await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
  const count = async (ps: Promise<unknown>[]) => (await Promise.allSettled(ps)).filter((r) => r.status === "fulfilled").length;
  // Attestations, then blocks, each kind in a batch of its own: a failed batch (the other process's block taken
  // by the unique key first) would otherwise refuse this process's attestations too, and hide their race.
  const attestations = await count(Array.from({ length: Number(n) }, (_, i) => db.att(pubkey, Number(source), 11, rootOf(tag, "att", i))));
  const blocks = await count(Array.from({ length: Number(n) }, (_, i) => db.block(pubkey, 100, rootOf(tag, "block", i))));
  const result = { attestations, blocks };
  await db.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function load(): Promise<void> {
  const [validators, firstTarget] = rest.map(Number) as [number, number];
  const db = await openHandle(location, gvr);
  for (let target = firstTarget; ; target++) {
    const inFlight: Promise<void>[] = [];
    for (let v = 0; v < validators; v++) {
      inFlight.push(
        db.att(pubkeyOf(v), target - 1, target, rootOf(v, target)).then(() => {
          fs.writeSync(1, `ok ${v} ${target}\n`);
        }),
      );
    }
    await Promise.all(inFlight);
  }
}

if (mode === "conflict") await conflict();
else if (mode === "load") await load();
else {
  process.stderr.write("usage: child-recorder conflict|load LOCATION_JSON ...\n");
  process.exit(2);
}
