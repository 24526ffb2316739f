// The expected-wait estimator of admission.ts, on a fake clock: what it refuses, and which measurements it trusts.
import { describe, expect, it } from "vitest";
import { AdmissionControl } from "../../signer/server/admission.js";
import { errorReply } from "../../signer/server/errors.js";

function control(hint: number | undefined, maxWaitMs = 1000) {
  let now = 0;
  const shed: string[] = [];
  const a = new AdmissionControl({ maxWaitMs, maxQueueDepth: 100_000, capacityHint: () => hint, onShed: (r) => shed.push(r), now: () => now });
  return { a, shed, advance: (ms: number) => (now += ms) };
}

const refusal = (f: () => void) => {
  try {
    f();
  } catch (e) {
    // As the HTTP layer answers it: statuses and Retry-After are mapped there (errors.ts), not by admission.
    const r = errorReply(e);
    return { status: r.status, code: String(r.body.code), retryAfterSeconds: r.retryAfter };
  }
  return undefined;
};

describe("admission by expected wait", () => {
  it("refuses nothing but the backstop before any rate is known", () => {
    const { a } = control(undefined);
    expect(refusal(() => a.check(99_999))).toBeUndefined();
    expect(refusal(() => a.check(100_000))).toMatchObject({ status: 503, code: "QUEUE_FULL" });
  });

  it("uses the workers' ceiling when no backlog was measured: refuses beyond maxWaitMs of work with 503 OVERLOADED", () => {
    const { a, shed } = control(3); // 3 signatures per ms
    expect(refusal(() => a.check(3000))).toBeUndefined(); // exactly 1000 ms
    const e = refusal(() => a.check(6000));
    expect(e).toMatchObject({ status: 503, code: "OVERLOADED" });
    expect(e!.retryAfterSeconds).toBe(1);
    expect(refusal(() => a.check(60_000))!.retryAfterSeconds).toBe(19);
    expect(shed).toEqual(["expected_wait", "expected_wait"]);
  });

  it("learns the real drain rate from backlogged requests only, and forgets it when it is stale", () => {
    const { a, advance } = control(3);
    // A request with 5 ahead that took 100 ms says nothing about capacity (pipeline latency).
    const short = a.ticket(5);
    advance(100);
    a.signed(short);
    expect(a.serviceRatePerMs).toBe(3);
    // Backlogged requests drained at 1 per ms (the database, not the workers, is the bottleneck here).
    for (let i = 0; i < 400; i++) {
      const t = a.ticket(999);
      advance(1000);
      a.signed(t);
      advance(-1000 + 5);
    }
    expect(a.serviceRatePerMs).toBeCloseTo(1, 1);
    expect(refusal(() => a.check(1500))).toMatchObject({ code: "OVERLOADED" }); // 1.5 s at 1/ms
    advance(11_000);
    expect(a.serviceRatePerMs).toBe(3); // stale: back to the ceiling
    expect(refusal(() => a.check(1500))).toBeUndefined();
  });
});
