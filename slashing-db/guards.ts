// The two refusals every backend makes before touching its store: closed, and (before a check) not pinned.
import { SlashingDbUnavailableError, SlashingProtectionError } from "./errors.js";

export function assertOpen(closed: boolean): void {
  if (closed) throw new SlashingDbUnavailableError("DB_CLOSED", "the slashing database is closed");
}

/** A database not yet pinned to a network cannot judge a message for it: fail closed. */
export function assertUsable(closed: boolean, pinnedRoot: string | null): void {
  assertOpen(closed);
  if (pinnedRoot === null) {
    throw new SlashingProtectionError(
      "GENESIS_VALIDATORS_ROOT_UNKNOWN",
      "the slashing database is not pinned to a network (genesis_validators_root) yet; refusing to sign",
    );
  }
}
