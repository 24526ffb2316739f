// vigil_slashing_db_size_bytes reads SlashingProtection.sizeBytes(): on SQLite the file and its -wal, on
// PostgreSQL pg_database_size. Both against real databases: more than 0 when fresh, larger after many records.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { openSlashingProtection } from "../../slashing-db/index.js";
import { testBackends } from "../helpers/backends.js";

const GVR = `0x${"5a".repeat(32)}`;
const VALIDATORS = 20;
const ATTESTATIONS = 200;

/** Many validators with many attestations each: enough rows to need new pages in any backend. */
function bigInterchange() {
  return {
    metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
    data: Array.from({ length: VALIDATORS }, (_, v) => ({
      pubkey: `0x${v.toString(16).padStart(2, "0").repeat(48)}`,
      signed_blocks: [],
      signed_attestations: Array.from({ length: ATTESTATIONS }, (_, e) => ({
        source_epoch: String(e),
        target_epoch: String(e + 1),
        signing_root: `0x${(e % 256).toString(16).padStart(2, "0").repeat(32)}`,
      })),
    })),
  };
}

for (const backend of testBackends()) {
  describe(`slashing database size (${backend.name})`, () => {
    it("is more than 0 when fresh and grows with the records", async () => {
      const location = await backend.freshLocation();
      const protection = await openSlashingProtection(location, { genesisValidatorsRoot: GVR });
      try {
        const fresh = await protection.sizeBytes();
        expect(fresh).toBeGreaterThan(0);
        if (location.kind === "sqlite") {
          const wal = fs.existsSync(`${location.path}-wal`) ? fs.statSync(`${location.path}-wal`).size : 0;
          expect(fresh).toBe(fs.statSync(location.path).size + wal);
        }
        await protection.importInterchange(bigInterchange());
        expect(await protection.sizeBytes()).toBeGreaterThan(fresh);
      } finally {
        await protection.close();
      }
    }, 60_000);
  });
}
