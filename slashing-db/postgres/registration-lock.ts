import type pg from "pg";

/**
 * The one lock that orders registering validators against setting the all-keys high watermark. A transaction
 * registering first-seen keys holds it shared; setting the all-keys watermark holds it exclusively. Both take
 * it before any validator row lock, so it adds no wait-for cycle (README.md, "Locking order").
 *
 * Why: the setter locks every validator row it can see, which makes each in-flight batch of checks finish
 * before the watermark commits. A key registered by a batch that has not committed yet is a row it cannot see:
 * without this lock, that batch could judge its checks before the watermark commits and record them after the
 * setter has returned. (`LOCK TABLE validators` instead deadlocks: a batch for known keys holds row locks, then
 * wants ROW EXCLUSIVE for its inserts.)
 */
const REGISTRATION_LOCK = 0x5649_4749_4c48_574dn; // any constant: "VIGILHWM"

/** Before inserting validators, in the same transaction; re-entrant. */
export async function holdRegistrationShared(client: pg.ClientBase): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock_shared($1::bigint)", [REGISTRATION_LOCK.toString()]);
}

/** Before locking every validator to set the all-keys high watermark: waits for registrations in flight. */
export async function holdRegistrationExclusive(client: pg.ClientBase): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [REGISTRATION_LOCK.toString()]);
}
