// The schema's Uint64 pattern accepts exactly the decimal strings from 0 to 2^64-1 (leading zeros allowed, 20
// characters at most, as before), checked against BigInt on the edges and on random strings of every length.
import { describe, expect, it } from "vitest";
import { decimalAtMostPattern, MAX_UINT64_DECIMAL } from "../../signer/signing/schemas.js";

const pattern = new RegExp(decimalAtMostPattern(MAX_UINT64_DECIMAL), "u");
const byBigInt = (s: string) => /^[0-9]{1,20}$/.test(s) && BigInt(s) <= 2n ** 64n - 1n;

describe("Uint64 pattern", () => {
  it("agrees with BigInt on the edges", () => {
    const max = 2n ** 64n - 1n;
    const edges = ["0", "00", "1", (2n ** 53n).toString(), (max - 1n).toString(), max.toString(), (max + 1n).toString(), "99999999999999999999"];
    // every value just above and below a prefix of 2^64-1: where a prefix-based regex would go wrong
    for (let i = 1; i < 20; i++) {
      const prefix = BigInt(MAX_UINT64_DECIMAL.slice(0, i)) * 10n ** BigInt(20 - i);
      edges.push(prefix.toString(), (prefix - 1n).toString(), (prefix + 1n).toString());
    }
    edges.push(`0${max}`, `000${"9".repeat(17)}`, "", "-1", "1e3", " 1", "0x10");
    for (const s of edges) expect(pattern.test(s), JSON.stringify(s)).toBe(byBigInt(s));
  });

  it("agrees with BigInt on random digit strings of 1 to 21 characters", () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (let n = 0; n < 20000; n++) {
      const length = 1 + (next() % 21);
      // bias towards 2^64-1's own digits so the interesting comparisons happen
      const s = Array.from({ length }, (_, i) => (next() % 3 === 0 ? String(next() % 10) : (MAX_UINT64_DECIMAL[i] ?? "0"))).join("");
      expect(pattern.test(s), s).toBe(byBigInt(s));
    }
  });
});
