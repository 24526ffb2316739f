/**
 * Everything buildApp (app.ts) composes the listeners from: one instance per running signer. Routes never see it
 * whole: each is handed only what it uses (SignRouteDeps, AdminRouteDeps, KeymanagerRouteDeps, HealthDeps).
 */
import type { Logger } from "pino";
import type { ClientView } from "../../admin-api/index.js";
import type { SlashingProtection } from "../../slashing-db/index.js";
import type { KeyStore } from "../keystore/index.js";
import type { BlsPool } from "../signing/index.js";
import type { AuditLog } from "./audit-log.js";
import type { AuthFailureGuard } from "./auth-failures.js";
import type { ClientRegistry } from "./auth.js";
import type { SignerConfig } from "./config.js";
import type { ClientFencing } from "./fencing/client-fencing.js";
import type { KeyManager } from "./key-manager.js";
import type { KeyReload } from "./reload.js";
import type { SignerMetrics } from "./metrics.js";
import type { SigningService } from "./signing-service.js";
import type { TokenDigest } from "./tokens.js";

export interface SignerContext {
  config: SignerConfig;
  logger: Logger;
  /** The slashing-protection database: checks, the network pin, imports, exports, health. */
  slashing: SlashingProtection;
  pool: BlsPool;
  keyStore: KeyStore;
  service: SigningService;
  clients: ClientRegistry;
  fencing: ClientFencing;
  audit: AuditLog;
  metrics: SignerMetrics;
  /** Counts, logs (rate-limited) and throttles failed authentications on every API. */
  authFailures: AuthFailureGuard;
  adminToken?: TokenDigest;
  keymanagerToken?: TokenDigest;
  /** Key imports and deletes (keymanager API). */
  keyManager: KeyManager;
  /** POST/GET /reload and SIGHUP: re-enumerates the key store. */
  reload: KeyReload;
  /** A `--workers N` worker: every worker's client views, which the admin API merges (undefined: one process). */
  groupClientViews?: () => Promise<ClientView[][]>;
}
