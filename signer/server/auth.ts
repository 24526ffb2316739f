/**
 * Which validator client a request comes from (admin-api.md "Client identities"), what it may use, and what
 * the signer has seen it do. First match wins: bearer token, TLS client certificate fingerprint, then the
 * dedicated listener the request arrived on. Without `clients` in the config every request belongs to one
 * implicit client, "default", with every key: the admin API can still fence it.
 */
import type { TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import { SIGN_TYPES } from "../signing/index.js";
import type { AllowedTypes, ClientConfig } from "./config.js";
import { DEFAULT_ALLOWED_TYPES, normalizeFingerprint } from "./config.js";
import { SharedClientTokenError, TypeNotAllowedError, UnauthenticatedError } from "./service-errors.js";
import { bearerToken, digestToken, readTokenFile } from "./tokens.js";
import type { LastSignedEntry } from "../../admin-api/index.js";

export const DEFAULT_CLIENT_ID = "default";
const LAST_SIGNED_MAX = 1000;

/** What ClientView.lastSigned reports per key (the admin API's contract). */
export type LastSigned = LastSignedEntry;

/** One client and its counters since start. */
export class ClientState {
  inFlight = 0;
  lastRequestAt: number | null = null;
  lastSignedAt: number | null = null;
  signed = 0;
  refused = 0;
  /** Newest signature per key; Map order = age, so the oldest is evicted first. */
  readonly lastSigned = new Map<string, LastSigned>();

  constructor(
    readonly id: string,
    /** undefined = every key. */
    readonly keys: ReadonlySet<string> | undefined,
    /** undefined = every request type. */
    readonly types?: ReadonlySet<string>,
  ) {}

  mayUse(pubkey: string): boolean {
    return this.keys === undefined || this.keys.has(pubkey);
  }

  /** Throws TypeNotAllowedError unless this client may have `type` signed (unknown types are left to validation). */
  checkType(type: string): void {
    if (this.types === undefined || this.types.has(type) || !(SIGN_TYPES as readonly string[]).includes(type)) return;
    throw new TypeNotAllowedError(this.id, type);
  }

  noteSigned(entry: LastSigned, nowMs: number): void {
    this.signed++;
    this.lastSignedAt = nowMs;
    this.lastSigned.delete(entry.pubkey);
    this.lastSigned.set(entry.pubkey, entry);
    if (this.lastSigned.size > LAST_SIGNED_MAX) this.lastSigned.delete(this.lastSigned.keys().next().value!);
  }
}

export class ClientRegistry {
  readonly clients = new Map<string, ClientState>();
  /** True when `clients` is configured: then unidentified requests are refused. */
  readonly authenticated: boolean;
  private readonly byToken = new Map<string, ClientState>();
  private readonly byFingerprint = new Map<string, ClientState>();
  private readonly bySocket = new WeakMap<Socket, ClientState | null>();

  /** `defaultTypes`: what the implicit client "default" may have signed (config defaultClient.allowedTypes). */
  constructor(configs: ClientConfig[] | undefined, defaultTypes: AllowedTypes = DEFAULT_ALLOWED_TYPES) {
    this.authenticated = configs !== undefined;
    if (configs === undefined) {
      this.clients.set(DEFAULT_CLIENT_ID, new ClientState(DEFAULT_CLIENT_ID, undefined, typeSet(defaultTypes)));
      return;
    }
    for (const c of configs) {
      const state = new ClientState(c.id, c.keys === "*" ? undefined : new Set(c.keys), typeSet(c.allowedTypes));
      this.clients.set(c.id, state);
      if (c.tokenFile !== undefined) {
        const digest = readTokenFile(c.tokenFile, { what: `client ${c.id}` }).toString("hex");
        if (this.byToken.has(digest)) throw new SharedClientTokenError(c.id);
        this.byToken.set(digest, state);
      }
      if (c.tlsClientCertSha256 !== undefined) this.byFingerprint.set(normalizeFingerprint(c.tlsClientCertSha256), state);
    }
  }

  get(id: string): ClientState | undefined {
    return this.clients.get(id);
  }

  /**
   * The client of a request, or throws UnauthenticatedError. `listenerClient` is the client whose dedicated listener the
   * request arrived on (undefined on the main listener).
   */
  identify(authorization: string | undefined, socket: Socket, listenerClient: ClientState | undefined): ClientState {
    if (!this.authenticated) return this.clients.get(DEFAULT_CLIENT_ID)!;
    const token = bearerToken(authorization);
    if (token !== undefined) {
      const byToken = this.byToken.get(digestToken(token).toString("hex"));
      if (byToken) return byToken;
      throw new UnauthenticatedError("the bearer token matches no configured client");
    }
    if (authorization !== undefined) throw new UnauthenticatedError("unsupported Authorization header (use Bearer)");
    const byCert = this.byCertificate(socket);
    if (byCert) return byCert;
    if (listenerClient) return listenerClient;
    throw new UnauthenticatedError("this request matches no configured client (send a bearer token or a client certificate)");
  }

  /** Certificates are per connection: look once, remember for the connection's life. */
  private byCertificate(socket: Socket): ClientState | undefined {
    if (this.byFingerprint.size === 0) return undefined;
    const cached = this.bySocket.get(socket);
    if (cached !== undefined) return cached ?? undefined;
    const tls = socket as TLSSocket;
    let found: ClientState | null = null;
    if (typeof tls.getPeerCertificate === "function") {
      const cert = tls.getPeerCertificate();
      if (cert?.fingerprint256) found = this.byFingerprint.get(normalizeFingerprint(cert.fingerprint256)) ?? null;
    }
    this.bySocket.set(socket, found);
    return found ?? undefined;
  }
}

function typeSet(types: AllowedTypes): ReadonlySet<string> | undefined {
  return types === "*" ? undefined : new Set(types);
}
