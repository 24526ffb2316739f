import { randomBytes } from "node:crypto";
import type { SlashingDbResponse } from "../../admin-api/index.js";
import type { InstanceResult, SignerAdminClient } from "../signer-client.js";

/**
 * Do two signers use one slashing database? Proved live, never taken from configuration (watchdog/docs/README.md,
 * "Shared database"):
 * 1. every instance reached reports the same backend and history id (made once per database by its migration);
 * 2. a fresh random nonce written through one signer is read back at every instance of both, and then another
 *    one written through the other signer.
 * A copy (a SQLite file copied, a PostgreSQL dump restored elsewhere) passes 1 but never 2: a nonce written a
 * moment ago is in one database only. Two watchdogs probing at once can make 2 fail (each overwrites the other's
 * nonce); that only costs the shared path, never grants it.
 */
export type SharingProof = { shared: true; detail: string } | { shared: false; reason: string };

export async function proveSharedDatabase(
  from: SignerAdminClient,
  to: SignerAdminClient,
  newNonce: () => string = () => randomBytes(16).toString("hex"),
): Promise<SharingProof> {
  const both = [from, to];
  const identities = await Promise.all(both.map((s) => s.each((i) => i.slashingDb())));
  const ids = new Set<string>();
  for (const [k, results] of identities.entries()) {
    const signer = both[k]!;
    const answered = results.filter((r) => r.ok);
    if (answered.length === 0) return { shared: false, reason: `no instance of signer ${signer.id} reports its slashing database (${errors(results)})` };
    for (const r of answered) {
      if (!r.value) return { shared: false, reason: `signer ${signer.id} at ${r.url} does not report its slashing database (an older Vigil)` };
      ids.add(`${r.value.backend}:${r.value.historyId}`);
    }
  }
  if (ids.size !== 1) return { shared: false, reason: `the signers report different databases (${[...ids].join(", ")})` };
  const notReached = new Set(identities.flat().flatMap((r) => (r.ok ? [] : [r.url])));
  for (const [writer, reader] of [
    [from, to],
    [to, from],
  ] as const) {
    const nonce = newNonce();
    try {
      await writer.first((i) => i.writeSharingNonce(nonce));
    } catch (err) {
      return { shared: false, reason: `the sharing nonce could not be written through signer ${writer.id}: ${(err as Error).message}` };
    }
    for (const s of [writer, reader]) {
      const read = await s.each((i) => i.slashingDb());
      for (const r of read) {
        if (!r.ok) notReached.add(r.url);
        else if (r.value?.sharingNonce?.nonce !== nonce) {
          return {
            shared: false,
            reason: `signer ${s.id} at ${r.url} does not read the nonce just written through signer ${writer.id}: another database (a copy?)`,
          };
        }
      }
      if (!read.some((r) => r.ok)) return { shared: false, reason: `no instance of signer ${s.id} answered to read the nonce back` };
    }
  }
  const [db] = [...ids];
  const [backend, historyId] = db!.split(":");
  const missing = notReached.size > 0 ? `; not reached, so not proved: ${[...notReached].join(", ")}` : "";
  return {
    shared: true,
    detail: `signers ${from.id} and ${to.id} share one ${backend} slashing database (history ${historyId}): a nonce written through each was read back at every instance reached${missing}`,
  };
}

/** Whether the identities alone say one database (read-only: for preconditions and plans; not a proof). */
export async function sameDatabaseReported(a: SignerAdminClient, b: SignerAdminClient): Promise<SlashingDbResponse | undefined> {
  const all = (await Promise.all([a, b].map((s) => s.each((i) => i.slashingDb())))).flat();
  const known = all.filter((r) => r.ok).map((r) => r.value);
  if (known.length === 0 || known.some((d) => !d)) return undefined;
  const first = known[0]!;
  return known.every((d) => d!.backend === first.backend && d!.historyId === first.historyId) ? first : undefined;
}

function errors(results: InstanceResult<unknown>[]): string {
  return results.map((r) => (r.ok ? r.url : `${r.url}: ${r.error.message}`)).join("; ");
}
