// The one fork list (signer/signing/forks.ts) is Lodestar's fork order, up to the last fork Vigil signs for.
import { forkAll } from "@lodestar/params";
import { describe, expect, it } from "vitest";
import { FORKS } from "../../signer/signing/index.js";

describe("fork list", () => {
  it("is @lodestar/params' fork order, in upper case, from phase0", () => {
    expect(FORKS.map((f) => f.toLowerCase())).toEqual(forkAll.slice(0, FORKS.length));
  });
});
