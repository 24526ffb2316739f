import path from "node:path";
import type { SlashingDbLocation } from "../../../slashing-db/index.js";
import { DEFAULT_CLIENT_ID } from "../auth.js";
import type { ClientFencing } from "./client-fencing.js";
import { PostgresClientFencing } from "./postgres.js";
import { SqliteClientFencing } from "./sqlite.js";

/**
 * Opens the client state where the slashing database is: with a SQLite file, `<dataDir>/signer-state.sqlite`
 * (this process alone); with PostgreSQL, the same database, so that every signer instance on it shares one
 * fencing state (signer/docs/fencing-across-instances.md).
 */
export async function openClientFencing(
  location: SlashingDbLocation,
  dataDir: string,
  /** The configured clients; none configured means the implicit client "default", enabled. */
  clients: readonly { id: string; initiallyEnabled: boolean }[] | undefined,
  onProblem: (message: string) => void,
): Promise<ClientFencing> {
  const initialState = new Map(clients === undefined ? [[DEFAULT_CLIENT_ID, true]] : clients.map((c) => [c.id, c.initiallyEnabled]));
  const file = path.join(dataDir, "signer-state.sqlite");
  // A signer moved from SQLite keeps what its file decided (a disabled client stays disabled, the generation never
  // goes back): carried over at every open, which is idempotent (./carry-over.ts).
  if (location.kind === "postgres") return PostgresClientFencing.open(location.connection, initialState, { onProblem, carryFrom: file, onCarry: onProblem });
  return SqliteClientFencing.open(file, initialState);
}
