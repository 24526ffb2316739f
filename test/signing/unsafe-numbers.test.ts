/**
 * uint64 fields sent as JSON numbers: JSON.parse rounds any integer above 2^53-1, so such a number must be refused
 * naming its field, never coerced to the rounded decimal string and signed. Every decimal field of every captured
 * Lodestar request type (plus the types Lodestar did not send) is tried.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidSignRequestError, validateSignRequest } from "../../signer/signing/index.js";
import { REFERENCE_DIR } from "./reference.js";

const UNSAFE = "9007199254740993"; // 2^53 + 1: JSON.parse gives 9007199254740992
const MAX_SAFE = "9007199254740991";
const ROOT = `0x${"11".repeat(32)}`;
const FORK_INFO = { fork: { previous_version: "0x00000001", current_version: "0x01000001", epoch: "0" }, genesis_validators_root: ROOT };
const PUBKEY = `0x${"aa".repeat(48)}`;

/** One body per type: the captured Lodestar ones, and hand-made ones for the types it never sent. */
function bodies(): [string, Record<string, unknown>][] {
  const out: [string, Record<string, unknown>][] = [];
  for (const file of fs.readdirSync(REFERENCE_DIR).filter((f) => f.endsWith(".json") && !f.startsWith("GET_"))) {
    out.push([file, (JSON.parse(fs.readFileSync(path.join(REFERENCE_DIR, file), "utf8")) as { body: Record<string, unknown> }).body]);
  }
  out.push(["VOLUNTARY_EXIT", { type: "VOLUNTARY_EXIT", fork_info: FORK_INFO, voluntary_exit: { epoch: "3", validator_index: "7" } }]);
  out.push([
    "DEPOSIT",
    { type: "DEPOSIT", deposit: { pubkey: PUBKEY, withdrawal_credentials: ROOT, amount: "32000000000", genesis_fork_version: "0x00000001" } },
  ]);
  out.push([
    "BLOCK_V2_DENEB",
    {
      type: "BLOCK_V2",
      fork_info: FORK_INFO,
      beacon_block: { version: "DENEB", block_header: { slot: "5", proposer_index: "2", parent_root: ROOT, state_root: ROOT, body_root: ROOT } },
    },
  ]);
  return out;
}

/** Paths of every decimal-string leaf (the schema's Uint64 fields). */
function decimalPaths(value: unknown, at: string[] = []): string[][] {
  if (typeof value === "string") return /^[0-9]+$/.test(value) ? [at] : [];
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => decimalPaths(v, [...at, k]));
}

/** The body as JSON text with the field at `at` written as the bare number literal `literal`. */
function withNumberLiteral(body: unknown, at: string[], literal: string): string {
  const copy = structuredClone(body) as Record<string, unknown>;
  let node = copy as Record<string, unknown>;
  for (const k of at.slice(0, -1)) node = node[k] as Record<string, unknown>;
  node[at[at.length - 1]!] = "@@NUMBER@@";
  return JSON.stringify(copy).replace(`"@@NUMBER@@"`, literal);
}

describe("uint64 fields sent as JSON numbers", () => {
  const cases = bodies();

  it("covers the fields that matter", () => {
    const all = cases.flatMap(([, b]) => decimalPaths(b).map((p) => p.join(".")));
    for (const field of [
      "attestation.source.epoch",
      "attestation.target.epoch",
      "beacon_block.block_header.slot",
      "validator_registration.gas_limit",
      "validator_registration.timestamp",
      "deposit.amount",
      "voluntary_exit.validator_index",
    ]) {
      expect(all).toContain(field);
    }
  });

  it.each(cases)("%s: an unsafe number in any uint64 field is refused naming that field", (_name, body) => {
    const paths = decimalPaths(body);
    expect(paths.length).toBeGreaterThan(0);
    for (const at of paths) {
      const parsed = JSON.parse(withNumberLiteral(body, at, UNSAFE));
      let error: unknown;
      try {
        validateSignRequest(parsed);
      } catch (e) {
        error = e;
      }
      expect(error, `${at.join(".")} = ${UNSAFE} was accepted`).toBeInstanceOf(InvalidSignRequestError);
      expect((error as InvalidSignRequestError).field).toBe(at.join("."));
      expect((error as InvalidSignRequestError).message).toMatch(/2\^53-1/);
    }
  });

  it.each(cases)("%s: 2^53-1 as a number is accepted and read exactly", (_name, body) => {
    for (const at of decimalPaths(body)) {
      const parsed = JSON.parse(withNumberLiteral(body, at, MAX_SAFE)) as Record<string, unknown>;
      validateSignRequest(parsed);
      let node: unknown = parsed;
      for (const k of at) node = (node as Record<string, unknown>)[k];
      expect(node).toBe(MAX_SAFE); // coerced to the exact decimal string
    }
  });

  it("fractions, exponents beyond 2^53 and huge literals are refused too", () => {
    const base = { type: "RANDAO_REVEAL", fork_info: FORK_INFO, randao_reveal: { epoch: "1" } };
    for (const literal of ["1.5", "1e300", "18446744073709551615", "9007199254740992"]) {
      expect(() => validateSignRequest(JSON.parse(withNumberLiteral(base, ["randao_reveal", "epoch"], literal)))).toThrow(
        expect.objectContaining({ field: "randao_reveal.epoch" }) as Error,
      );
    }
    // the decimal string form of a large uint64 stays exact and valid
    expect(() => validateSignRequest({ ...base, randao_reveal: { epoch: "18446744073709551615" } })).not.toThrow();
  });
});
