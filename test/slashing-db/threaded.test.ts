/**
 * The SlashingProtection a signer uses, on both backends (ThreadedSlashingProtection on SQLite,
 * PostgresSlashingProtection): checks with byte keys and roots with the database's answers and error classes;
 * the network pin owned by it (first root pins, another is refused, an import pins and the checks learn of it);
 * input that could not be stored (and on SQLite, that the fixed-size wire records could not carry) refused
 * before it is sent; a closed one fails closed. Then ThreadedSlashingProtection's own: each error class's wire
 * form read back as the same error.
 */
import { describe, expect, it } from "vitest";
import { SlashingDbInputError, SlashingDbUnavailableError, SlashingProtectionError } from "../../slashing-db/index.js";
import { errorFromWire } from "../../slashing-db/errors.js";
import { openProtection } from "../helpers/backend-handle.js";
import { testBackends } from "../helpers/backends.js";

const GVR = `0x${"33".repeat(32)}`;
const OTHER = `0x${"44".repeat(32)}`;
const PK = `0x${"ab".repeat(48)}`;
const backends = testBackends();
const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex.slice(2), "hex"));
const root = (n: number) => new Uint8Array(32).fill(n);

describe.each(backends.map((b) => [b.name, b] as const))("SlashingProtection on %s", (_name, backend) => {
  it("checks bytes with the database's answers and refusals; closes cleanly", async () => {
    const location = await backend.freshLocation();
    const commits: number[] = [];
    const p = await openProtection(location, { genesisValidatorsRoot: GVR, onCommit: (s) => commits.push(s.size) });
    try {
      expect(p.genesisValidatorsRoot).toBe(GVR);
      const block = { kind: "block", pubkey: bytes(PK), slot: 10n, signingRoot: root(1) } as const;
      expect(await p.checkAndRecord(block)).toBe("recorded");
      expect(await p.checkAndRecord(block)).toBe("repeat");
      const double = await p.checkAndRecord({ ...block, signingRoot: root(2) }).catch((e: unknown) => e);
      expect(double).toBeInstanceOf(SlashingProtectionError);
      expect((double as SlashingProtectionError).refusal).toBe("DOUBLE_BLOCK_PROPOSAL");
      const att = { kind: "attestation", pubkey: bytes(PK), sourceEpoch: 1n, targetEpoch: 4n, signingRoot: root(3) } as const;
      expect(await p.checkAndRecord(att)).toBe("recorded");
      const doubleVote = await p.checkAndRecord({ ...att, signingRoot: root(4) }).catch((e: unknown) => e);
      expect((doubleVote as SlashingProtectionError).refusal).toBe("DOUBLE_VOTE");
      expect(await p.checkAndRecord({ ...att, sourceEpoch: 4n, targetEpoch: 5n })).toBe("recorded");
      expect(commits.length).toBeGreaterThan(0);
      expect(await p.health()).toEqual({ up: true });
      expect(p.isAlive()).toBe(true);
    } finally {
      expect(await p.close()).toEqual([]);
    }
    const reopened = await openProtection(location);
    try {
      expect(reopened.genesisValidatorsRoot).toBe(GVR);
      expect(await reopened.checkAndRecord({ kind: "block", pubkey: bytes(PK), slot: 10n, signingRoot: root(1) })).toBe("repeat");
    } finally {
      await reopened.close();
    }
  });

  it("input that could not be stored is refused before it is sent: wrong lengths, values past 2^63-1", async () => {
    const p = await openProtection(await backend.freshLocation(), { genesisValidatorsRoot: GVR });
    try {
      const bad = [
        { kind: "block", pubkey: new Uint8Array(47), slot: 1n, signingRoot: root(1) },
        { kind: "block", pubkey: new Uint8Array(49), slot: 1n, signingRoot: root(1) },
        { kind: "block", pubkey: bytes(PK), slot: 1n, signingRoot: new Uint8Array(31) },
        { kind: "block", pubkey: bytes(PK), slot: 1n << 63n, signingRoot: root(1) },
        { kind: "attestation", pubkey: bytes(PK), sourceEpoch: -1n, targetEpoch: 2n, signingRoot: root(1) },
      ] as const;
      for (const check of bad) await expect(p.checkAndRecord(check)).rejects.toBeInstanceOf(SlashingDbInputError);
      expect(await p.checkAndRecord({ kind: "block", pubkey: bytes(PK), slot: (1n << 63n) - 1n, signingRoot: root(1) })).toBe("recorded");
    } finally {
      expect(await p.close()).toEqual([]);
    }
  });

  it("owns the pin: the first root pins durably, another is refused; an import pins and checks are judged under it", async () => {
    const p = await openProtection(await backend.freshLocation());
    try {
      expect(p.genesisValidatorsRoot).toBeNull();
      const unpinned = await p.checkAndRecord({ kind: "block", pubkey: bytes(PK), slot: 1n, signingRoot: root(1) }).catch((e: unknown) => e);
      expect((unpinned as SlashingProtectionError).refusal).toBe("GENESIS_VALIDATORS_ROOT_UNKNOWN");
      await p.importInterchange({ metadata: { interchange_format_version: "5", genesis_validators_root: GVR }, data: [] });
      expect(p.genesisValidatorsRoot).toBe(GVR);
      expect(await p.checkAndRecord({ kind: "block", pubkey: bytes(PK), slot: 1n, signingRoot: root(1) })).toBe("recorded");
      await p.pin(bytes(GVR));
      const other = await p.pin(bytes(OTHER)).catch((e: unknown) => e);
      expect((other as SlashingProtectionError).refusal).toBe("GENESIS_VALIDATORS_ROOT_MISMATCH");
      expect((await p.exportInterchange()).metadata.genesis_validators_root).toBe(GVR);
    } finally {
      expect(await p.close()).toEqual([]);
    }
    const again = await openProtection(await backend.freshLocation());
    try {
      await again.pin(bytes(OTHER));
      expect(again.genesisValidatorsRoot).toBe(OTHER);
      expect(await again.checkAndRecord({ kind: "block", pubkey: bytes(PK), slot: 1n, signingRoot: root(1) })).toBe("recorded");
    } finally {
      await again.close();
    }
  });

  it("a closed protection fails closed with DB_CLOSED", async () => {
    const p = await openProtection(await backend.freshLocation(), { genesisValidatorsRoot: GVR });
    expect(await p.close()).toEqual([]);
    const err = await p.checkAndRecord({ kind: "block", pubkey: bytes(PK), slot: 1n, signingRoot: root(1) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlashingDbUnavailableError);
    expect((err as SlashingDbUnavailableError).code).toBe("DB_CLOSED");
    // The reads outside the group commit too (GET /api/v1/eth2/highWatermark, the identity proof).
    for (const read of [() => p.highWatermark(), () => p.identity()]) {
      const refused = await read().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SlashingDbUnavailableError);
      expect((refused as SlashingDbUnavailableError).code).toBe("DB_CLOSED");
    }
    expect(p.isAlive()).toBe(false);
  });
});

describe("ThreadedSlashingProtection whose worker stops", () => {
  it("refuses every call after it with WORKER_STOPPED: the checks, and the reads on this thread's connection too", async () => {
    const sqlite = backends.find((b) => b.name === "sqlite")!;
    const p = await openProtection(await sqlite.freshLocation(), { genesisValidatorsRoot: GVR });
    expect(await p.highWatermark()).toBeNull();
    // As a crash in the worker would: its thread ends without close() having asked it to.
    await (p as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const refusals = [
      () => p.checkAndRecord({ kind: "block", pubkey: bytes(PK), slot: 1n, signingRoot: root(1) }),
      () => p.highWatermark(),
      () => p.identity(),
    ];
    for (const call of refusals) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlashingDbUnavailableError);
      expect((err as SlashingDbUnavailableError).failure).toBe("WORKER_STOPPED");
    }
    expect(p.isAlive()).toBe(false);
    await p.close();
  });
});

describe("errors on the wire", () => {
  it("each error class writes its own wire form and reads it back as the same error", () => {
    const errors = [
      new SlashingProtectionError("SURROUNDING_VOTE", "surrounds a recorded vote"),
      new SlashingDbInputError("slot", "must not be negative"),
      new SlashingDbUnavailableError("DB_WRITE_FAILED", "disk full", "DISK_FULL"),
      new SlashingDbUnavailableError("DB_CLOSED", "closed"),
    ];
    for (const err of errors) {
      const back = errorFromWire(structuredClone(err.toWire()));
      expect(back).toBeInstanceOf(err.constructor);
      expect(back.message).toBe(err.message);
      expect(back.code).toBe(err.code);
      expect(back.exitCode).toBe(err.exitCode);
      if (err instanceof SlashingDbUnavailableError) expect((back as SlashingDbUnavailableError).failure).toBe(err.failure);
      if (err instanceof SlashingDbInputError) expect((back as SlashingDbInputError).field).toBe("slot");
    }
  });
});
