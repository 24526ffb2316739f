// Several real signer processes on one PostgreSQL slashing database, all holding the same keys (issue 11):
// conflicting requests split between them over HTTP are signed exactly once per conflict set, the union of
// everything any of them released holds no slashable pair (checked pairwise with the brute-force EIP-3076
// rules of test/slashing-db/oracle.ts), and every signature a client received is recorded in the database —
// also when one of the processes is SIGKILLed at a random moment under load, round after round.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import bls from "@chainsafe/bls";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bytesToHex, hexToBytes } from "../../common/index.js";
import { computeSigningRoot, loadConsensus, MINIMAL_DEVNET, validateSignRequest, type SlashingFacts } from "../../signer/signing/index.js";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { startSignerCluster, type SignerCluster } from "../helpers/signer-cluster.js";
import { killLeftovers } from "../helpers/signer-process.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { attsSlashable, blocksSlashable } from "../slashing-db/oracle.js";
import { attestationBody, blockBody, http, interopPubkey, tokenWithInteropKeys } from "./harness.js";

const KEYS = 4;
const work = tempDir("vigil-multi-");
let token: TestToken;
let server: TestPostgres;
let cluster: SignerCluster | undefined;
let ownSofthsmDir: string | undefined;

beforeAll(async () => {
  // A SoftHSM2 token directory of this file's own (inherited by the signers), before any PKCS#11 use here: a
  // login anywhere in a shared one (another test file's signers) rewrites token files, and a signer starting
  // meanwhile can find no token at all (HSM_TOKEN_NOT_FOUND); this file restarts signers 20 times.
  process.env.SOFTHSM2_CONF = execFileSync("sh", ["test/setup/softhsm-conf.sh"], { encoding: "utf8" }).trim();
  ownSofthsmDir = path.dirname(process.env.SOFTHSM2_CONF);
  [token, server] = await Promise.all([tokenWithInteropKeys("vigil-test-multi", KEYS), startPostgres()]);
  await loadConsensus("minimal");
}, 120_000);
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});
afterAll(async () => {
  killLeftovers();
  await server?.stop();
  token?.destroy();
  if (ownSofthsmDir) fs.rmSync(ownSofthsmDir, { recursive: true, force: true });
});

type Body = ReturnType<typeof attestationBody> | ReturnType<typeof blockBody>;

/** A message some signer released (HTTP 200), its signing root and slot/epochs computed here, independently of the signer. */
interface Released {
  key: number;
  facts: SlashingFacts;
  signature: string;
  signingRoot: string;
}

/** POSTs `body` for `key` to one signer; undefined when the connection failed (a killed process). */
async function sign(url: string, key: number, body: Body): Promise<{ status: number; reason?: string; signature?: string } | undefined> {
  try {
    const res = await http(`${url}/api/v1/eth2/sign/${interopPubkey(key)}`, { body });
    const json = res.status === 200 || res.status === 412 ? res.json() : {};
    return { status: res.status, reason: json.reason, signature: json.signature };
  } catch {
    return undefined;
  }
}

function released(key: number, body: Body, signature: string): Released {
  const { signingRoot, slashing } = computeSigningRoot(validateSignRequest(structuredClone(body)), MINIMAL_DEVNET);
  return { key, facts: slashing, signature, signingRoot: bytesToHex(signingRoot) };
}

/** Pairs of released messages of one key that EIP-3076 calls slashable (names them, for the failure message). */
function slashablePairs(all: Released[]): string[] {
  const found: string[] = [];
  for (let key = 0; key < KEYS; key++) {
    const mine = all.filter((r) => r.key === key);
    const blocks = mine.flatMap((r) => (r.facts.kind === "block" ? [{ slot: r.facts.slot, root: r.signingRoot }] : []));
    const atts = mine.flatMap((r) =>
      r.facts.kind === "attestation" ? [{ source: r.facts.sourceEpoch, target: r.facts.targetEpoch, root: r.signingRoot }] : [],
    );
    for (let i = 0; i < blocks.length; i++) {
      for (let j = i + 1; j < blocks.length; j++) if (blocksSlashable(blocks[i]!, blocks[j]!)) found.push(`key ${key} blocks at slot ${blocks[i]!.slot}`);
    }
    for (let i = 0; i < atts.length; i++) {
      for (let j = i + 1; j < atts.length; j++) {
        const [a, b] = [atts[i]!, atts[j]!];
        if (attsSlashable(a, b)) found.push(`key ${key} attestations ${a.source}->${a.target} and ${b.source}->${b.target}`);
      }
    }
  }
  return found;
}

/** Every row of the shared database, as "pubkey/kind/slot-or-epochs/signing root". */
async function recordedRows(dbUrl: string): Promise<Set<string>> {
  const client: pg.Client = await server.connect(dbUrl);
  try {
    const blocks = await client.query<{ pubkey: string; slot: string; root: string }>(
      "SELECT encode(v.pubkey, 'hex') AS pubkey, b.slot::text AS slot, encode(b.signing_root, 'hex') AS root FROM signed_blocks b JOIN validators v ON v.id = b.validator_id",
    );
    const atts = await client.query<{ pubkey: string; source: string; target: string; root: string }>(
      "SELECT encode(v.pubkey, 'hex') AS pubkey, a.source_epoch::text AS source, a.target_epoch::text AS target, encode(a.signing_root, 'hex') AS root FROM signed_attestations a JOIN validators v ON v.id = a.validator_id",
    );
    return new Set([
      ...blocks.rows.map((r) => `0x${r.pubkey}/block/${r.slot}/0x${r.root}`),
      ...atts.rows.map((r) => `0x${r.pubkey}/attestation/${r.source}-${r.target}/0x${r.root}`),
    ]);
  } finally {
    await client.end();
  }
}

function rowOf(r: Released): string {
  const f = r.facts;
  const what = f.kind === "block" ? `block/${f.slot}` : f.kind === "attestation" ? `attestation/${f.sourceEpoch}-${f.targetEpoch}` : "none";
  return `${interopPubkey(r.key)}/${what}/${r.signingRoot}`;
}

/** The released messages (described) whose record is not in the database, or whose signature is not over its signing root. */
async function unrecordedOrForged(dbUrl: string, all: Released[]): Promise<string[]> {
  const rows = await recordedRows(dbUrl);
  const problems: string[] = [];
  for (const r of all) {
    if (!rows.has(rowOf(r))) problems.push(`not recorded: ${rowOf(r)}`);
    if (!bls.verify(hexToBytes(interopPubkey(r.key)), hexToBytes(r.signingRoot), hexToBytes(r.signature))) problems.push(`signature not over ${rowOf(r)}`);
  }
  return problems;
}

type SetKind = "block" | "double-vote" | "surround";

/**
 * The `size` requests of one conflict set for one key, every pair of which is slashable: blocks at one slot with
 * different bodies; attestations with one target and different sources or roots; or a chain of nested votes
 * (each surrounds the next). Everything lives in [base, base + 2*size]: sets of one key never overlap.
 */
function conflictSet(kind: SetKind, base: number, size: number, tag: number): Body[] {
  const root = (j: number) => `0x${(tag * 1000 + j).toString(16).padStart(64, "0")}`;
  return Array.from({ length: size }, (_, j) => {
    if (kind === "block") return blockBody(base, { bodyRoot: root(j) });
    if (kind === "double-vote") return attestationBody(base + (j % 2), base + 2 * size, { blockRoot: root(j) });
    return attestationBody(base + j, base + 2 * size - j, { blockRoot: root(j) });
  });
}

/**
 * `setsPerKey` conflict sets per key, keys in parallel and each key's sets one after another (a later set sits
 * above the earlier ones, so only its own members conflict). Each set's requests go out at once, spread over
 * every member, and each member gets its turn at every position (outer and inner vote of a surround).
 */
async function conflictLoad(
  c: SignerCluster,
  setsPerKey: number,
  perMember: number,
): Promise<{ released: Released[]; perSet: number[]; reasons: Set<string> }> {
  const n = c.members.length;
  const size = n * perMember;
  const kinds: SetKind[] = ["block", "double-vote", "surround"];
  const all: Released[] = [];
  const perSet: number[] = [];
  const reasons = new Set<string>();
  await Promise.all(
    Array.from({ length: KEYS }, async (_, key) => {
      for (let s = 0; s < setsPerKey; s++) {
        const kind = kinds[(s + key) % kinds.length]!;
        const bodies = conflictSet(kind, 10 + s * (2 * size + 2), size, key * setsPerKey + s);
        const replies = await Promise.all(bodies.map((body, j) => sign(c.members[(j + s) % n]!.url, key, body)));
        let signed = 0;
        replies.forEach((reply, j) => {
          expect(reply, `key ${key} set ${s}: no reply`).toBeDefined();
          if (reply!.status === 200) {
            signed++;
            all.push(released(key, bodies[j]!, reply!.signature!));
          } else {
            expect(reply!.status, `key ${key} set ${s} (${kind}): ${JSON.stringify(reply)}`).toBe(412);
            reasons.add(reply!.reason!);
          }
        });
        perSet.push(signed);
      }
    }),
  );
  return { released: all, perSet, reasons };
}

describe.each([2, 4])("%i signer processes on one PostgreSQL database, the same keys", (processes) => {
  it("conflicting requests split between them: exactly one signed per set, no slashable pair in the union, every 200 recorded", async () => {
    const dbUrl = await server.createDatabase();
    cluster = await startSignerCluster({
      token,
      count: processes,
      postgres: { url: dbUrl, passwordFile: server.passwordFile, poolSize: 2 },
      work: `${work}/conflicts-${processes}`,
      extra: { limits: { blsThreads: 1 } },
    });
    const setsPerKey = processes === 2 ? 24 : 12;
    const { released: all, perSet, reasons } = await conflictLoad(cluster, setsPerKey, 2);
    // Every kind of conflict lost somewhere, and surrounds in both directions (the new vote surrounding the
    // recorded one, and surrounded by it). A key's first sets may also lose to its low watermarks.
    expect([...reasons]).toEqual(expect.arrayContaining(["DOUBLE_BLOCK_PROPOSAL", "DOUBLE_VOTE", "SURROUNDED_VOTE", "SURROUNDING_VOTE"]));
    expect(perSet).toHaveLength(KEYS * setsPerKey);
    expect(
      perSet.every((n) => n === 1),
      `signed per set: ${perSet.join(",")}`,
    ).toBe(true);
    expect(all).toHaveLength(KEYS * setsPerKey);
    expect(slashablePairs(all)).toEqual([]);
    expect(await unrecordedOrForged(dbUrl, all)).toEqual([]);
  }, 120_000);
});

describe("SIGKILL of one signer process under load", () => {
  const ROUNDS = 20;
  it(`${ROUNDS} rounds: every signature a client received is in the database, and no conflict pair was ever signed twice`, async () => {
    const dbUrl = await server.createDatabase();
    cluster = await startSignerCluster({
      token,
      count: 2,
      postgres: { url: dbUrl, passwordFile: server.passwordFile, poolSize: 2 },
      work: `${work}/sigkill`,
      extra: { limits: { blsThreads: 1 } },
    });
    const c = cluster;
    const all: Released[] = [];
    const nextBase = new Array<number>(KEYS).fill(10);
    let killedMidRequest = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const victim = round % 2;
      let stop = false;
      // Each worker sends, for its key, a pair of double votes (or of blocks at one slot) to both processes at
      // once, then the next pair above it: at most one of a pair may be signed, whichever process is alive.
      const worker = async (key: number) => {
        for (let step = 0; !stop; step++) {
          const base = nextBase[key]!;
          nextBase[key] = base + 4;
          const bodies = conflictSet(step % 5 === 4 ? "block" : "double-vote", base, 2, 100_000 + round * 10_000 + key * 1000 + step);
          const urls = c.members.map((m) => m.url);
          const replies = await Promise.all(bodies.map((body, j) => sign(urls[j]!, key, body)));
          const signed = replies.flatMap((r, j) => (r?.status === 200 ? [released(key, bodies[j]!, r.signature!)] : []));
          expect(signed.length, `round ${round} key ${key}: both of a conflicting pair signed`).toBeLessThanOrEqual(1);
          all.push(...signed);
          for (const r of replies) {
            if (r === undefined) killedMidRequest++;
            else if (r.status !== 200) expect([412, 503], JSON.stringify(r)).toContain(r.status);
          }
        }
      };
      const before = all.length;
      const load = Array.from({ length: KEYS }, (_, key) => worker(key));
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 350));
      await c.kill(victim);
      await new Promise((r) => setTimeout(r, 100)); // the survivor keeps signing alone for a moment
      stop = true;
      await Promise.all(load);
      expect(all.length, `round ${round}: nothing was signed`).toBeGreaterThan(before);
      // Checked while the victim is still dead: what it acknowledged must already be durable.
      expect(await unrecordedOrForged(dbUrl, all.slice(before)), `round ${round}`).toEqual([]);
      await c.restart(victim);
    }
    expect(slashablePairs(all)).toEqual([]);
    expect(await unrecordedOrForged(dbUrl, all)).toEqual([]);
    expect(killedMidRequest, "no request was ever cut by a kill: the kills missed the load").toBeGreaterThan(0);
  }, 180_000);
});
