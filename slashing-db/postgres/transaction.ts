import type pg from "pg";
import { SlashingDbError, SlashingDbUnavailableError } from "../errors.js";
import { classifyPgFailure } from "./failures.js";
import { READ_COMMITTED_WRITE } from "./isolation.js";

/** A driver error as a SlashingDbUnavailableError naming its cause (UNREACHABLE, AUTH_FAILED…); ours pass through. */
export function asUnavailable(err: unknown, what: string): Error {
  if (err instanceof SlashingDbError) return err;
  return new SlashingDbUnavailableError("DB_WRITE_FAILED", `${what}: ${(err as Error).message}`, classifyPgFailure(err));
}

/**
 * One durable transaction outside the group commit (pin, imports, watermarks, prune, copy, exports):
 * synchronous_commit on, as every write of Vigil's. On any failure it is rolled back and its connection dropped
 * (its state is unknown); the error names `what` failed.
 */
export async function durableTransaction<T>(pool: pg.Pool, what: string, work: (client: pg.PoolClient) => Promise<T>, mode = READ_COMMITTED_WRITE): Promise<T> {
  let client: pg.PoolClient | undefined;
  try {
    client = await pool.connect();
    await client.query(`BEGIN ${mode}`);
    await client.query("SET LOCAL synchronous_commit TO on");
    const result = await work(client);
    await client.query("COMMIT");
    client.release();
    return result;
  } catch (err) {
    await client?.query("ROLLBACK").catch(() => undefined);
    client?.release(true);
    throw asUnavailable(err, what);
  }
}
