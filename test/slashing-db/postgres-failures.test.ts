/**
 * What a PostgreSQL failure is named (slashing-db/postgres/failures.ts) when a signer meets a Patroni switch: a
 * standby (read-only, in recovery) and a server starting up are "database unavailable" causes, never UNKNOWN;
 * and a libpq multi-host URL is refused with its reason (slashing-db/postgres/config.ts). The same, against a
 * real Patroni pair: test/deploy/patroni.test.ts.
 */
import { expect, it } from "vitest";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";
import { classifyPgFailure } from "../../slashing-db/postgres/failures.js";

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

it("names a standby's refusals READ_ONLY and a server starting up UNREACHABLE", () => {
  // PostgreSQL's own messages on a hot standby
  expect(classifyPgFailure(pgError("25006", "cannot execute INSERT in a read-only transaction"))).toBe("READ_ONLY");
  expect(classifyPgFailure(pgError("0A000", "cannot set transaction read-write mode during recovery"))).toBe("READ_ONLY");
  expect(classifyPgFailure(pgError("25006", "cannot execute txid_current() during recovery"))).toBe("READ_ONLY");
  expect(classifyPgFailure(pgError("57P03", "the database system is starting up"))).toBe("UNREACHABLE");
  expect(classifyPgFailure(pgError("57P01", "terminating connection due to administrator command"))).toBe("UNREACHABLE");
  // not everything with 0A000 is a standby
  expect(classifyPgFailure(pgError("0A000", "cannot do something else"))).toBe("UNKNOWN");
});

it("refuses a libpq multi-host URL, pointing to HAProxy", () => {
  for (const url of ["postgres://vigil@10.0.0.11:5432,10.0.0.12:5432/vigil", "postgresql://vigil@pg1,pg2/vigil"]) {
    expect(() => toPoolConfig({ url })).toThrow(/names several hosts.*HAProxy/);
  }
  expect(toPoolConfig({ url: "postgres://vigil@127.0.0.1:5000/vigil" }).port).toBe(5000);
});
