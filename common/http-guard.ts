/**
 * The guard in front of every HTTP listener of Vigil: no web page may reach a route.
 *
 * - DNS rebinding: a page whose name re-resolves to 127.0.0.1 is same-origin with itself, so the browser lets it
 *   read replies, but its requests carry `Host: <its own name>`. Only Host names in an allowlist are served.
 * - Cross-origin requests: every fetch()/form POST from a page carries `Origin` (or, for a no-cors GET,
 *   `Sec-Fetch-Site: cross-site|same-site`). Those are refused unless the origin is explicitly allowed.
 *   No CORS headers are ever sent, so a browser never gets to read a reply cross-origin either way.
 *
 * It runs as a fastify `onRequest` hook: before routing and body parsing, so a refused request costs nothing.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { FastifyInstance, FastifyRequest } from "fastify";

export const HOST_ALLOW_ANY = "*";
/** Always allowed (with the listener's own port): a page on the Internet cannot be named like this. */
export const LOOPBACK_HOST_NAMES: readonly string[] = ["localhost", "127.0.0.1", "[::1]"];
/** 403, not 421: a client (HTTP/2 especially) may retry a 421 elsewhere on its own; a refusal must be final. */
export const GUARD_REFUSAL_STATUS = 403;

export type GuardRefusalCode = "HOST_NOT_ALLOWED" | "ORIGIN_NOT_ALLOWED";
export interface GuardRefusal {
  code: GuardRefusalCode;
  message: string;
}

export interface HttpGuardSettings {
  /** Extra Host values: "name" (any port), "name:port", "[v6]:port", or "*" (any Host; dangerous). */
  hostAllowlist: readonly string[];
  /** Origins let through, exactly as sent ("https://ops.example:8443", "null"), or "*". Default: none. */
  allowedOrigins: readonly string[];
}

export const DEFAULT_HTTP_GUARD: HttpGuardSettings = Object.freeze({ hostAllowlist: [], allowedOrigins: [] });

interface HostValue {
  /** Lower case; IPv6 literals in brackets. */
  name: string;
  port: number | undefined;
}

const BRACKETED = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/;
const NAMED = /^([a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(?::(\d{1,5}))?$/;

/** Parses a Host header value (or an allowlist entry); undefined if it is not a plain host[:port]. */
export function parseHostValue(value: string): HostValue | undefined {
  const v = value.toLowerCase();
  const m = BRACKETED.exec(v) ?? NAMED.exec(v);
  if (!m) return undefined;
  const name = v.startsWith("[") ? `[${m[1]}]` : m[1]!;
  if (m[2] === undefined) return { name, port: undefined };
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { name, port } : undefined;
}

/** How a listen address appears in a Host header; undefined for wildcards, which name no host. */
export function hostNameOfListenAddress(host: string): string | undefined {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "0.0.0.0" || h === "::" || h === "") return undefined;
  return h.includes(":") ? `[${h}]` : h;
}

export function isLoopbackAddress(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || h.startsWith("127.");
}

/** Checks one setting's entries; returns the problem with the first bad one (config parsers name the field). */
export function invalidHostAllowlistEntry(entry: string): string | undefined {
  if (entry === HOST_ALLOW_ANY) return undefined;
  return parseHostValue(entry) ? undefined : `"${entry}" is not a host name, IP address or [IPv6] with an optional :port`;
}

export function invalidOriginEntry(entry: string): string | undefined {
  if (entry === "*" || entry === "null") return undefined;
  return /^https?:\/\/[^/\s?#]+$/i.test(entry) ? undefined : `"${entry}" is not an origin (scheme://host[:port], "null" or "*")`;
}

/** The guard of one listener. */
export class HttpGuard {
  private readonly anyHost: boolean;
  private readonly anyOrigin: boolean;
  /** Names allowed only with the listener's own port (the defaults). */
  private readonly ownPortNames: ReadonlySet<string>;
  /** Explicit entries: a name without port matches any port. */
  private readonly anyPortNames = new Set<string>();
  private readonly exact = new Set<string>();
  private readonly origins: ReadonlySet<string>;

  /**
   * `listenHost`: the configured address of this listener; it joins the defaults unless it is a wildcard
   * (0.0.0.0 / ::), which names no host (then remote clients' names must be listed).
   */
  constructor(
    settings: HttpGuardSettings,
    listenHost: string,
    private readonly tls = false,
  ) {
    this.anyHost = settings.hostAllowlist.includes(HOST_ALLOW_ANY);
    this.anyOrigin = settings.allowedOrigins.includes("*");
    const own = new Set(LOOPBACK_HOST_NAMES);
    const listenName = hostNameOfListenAddress(listenHost);
    if (listenName !== undefined) own.add(listenName);
    this.ownPortNames = own;
    for (const entry of settings.hostAllowlist) {
      if (entry === HOST_ALLOW_ANY) continue;
      const h = parseHostValue(entry);
      if (!h) throw new Error(invalidHostAllowlistEntry(entry));
      if (h.port === undefined) this.anyPortNames.add(h.name);
      else this.exact.add(`${h.name}:${h.port}`);
    }
    this.origins = new Set(settings.allowedOrigins.map((o) => o.toLowerCase()));
  }

  /** True when only the built-in names are accepted (no explicit entry). */
  get onlyDefaults(): boolean {
    return !this.anyHost && this.anyPortNames.size === 0 && this.exact.size === 0;
  }

  /** Undefined when the request may proceed. `localPort`: the port the connection arrived on. */
  check(headers: IncomingHttpHeaders, localPort: number | undefined): GuardRefusal | undefined {
    const host = headers.host;
    if (!this.anyHost) {
      if (host === undefined || host === "") return { code: "HOST_NOT_ALLOWED", message: "the request has no Host header" };
      if (!this.hostAllowed(host, localPort)) {
        return { code: "HOST_NOT_ALLOWED", message: `Host "${printable(host)}" is not in this signer's host allowlist (http.hostAllowlist)` };
      }
    }
    if (this.anyOrigin) return undefined;
    const origin = headers.origin;
    if (origin !== undefined) {
      if (this.origins.has(origin.toLowerCase())) return undefined;
      return { code: "ORIGIN_NOT_ALLOWED", message: `requests from web pages are refused (Origin "${printable(origin)}" is not allowed)` };
    }
    const site = headers["sec-fetch-site"];
    if (site === "cross-site" || site === "same-site") {
      return { code: "ORIGIN_NOT_ALLOWED", message: `requests from web pages are refused (Sec-Fetch-Site: ${site})` };
    }
    return undefined;
  }

  private hostAllowed(value: string, localPort: number | undefined): boolean {
    const h = parseHostValue(value);
    if (!h) return false;
    if (h.port !== undefined && this.exact.has(`${h.name}:${h.port}`)) return true;
    if (this.anyPortNames.has(h.name)) return true;
    if (!this.ownPortNames.has(h.name)) return false;
    // Without a port, the Host names the scheme's default port.
    const port = h.port ?? (this.tls ? 443 : 80);
    return port === localPort;
  }
}

/** A header value for a log line or a message: bounded and printable. */
function printable(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, "?").slice(0, 100);
}

/**
 * Puts `guard` in front of every route of `app` (unknown routes included). Call before registering routes.
 * `onRefused` is told each refusal (metrics, a log line).
 */
export function installHttpGuard(app: FastifyInstance, guard: HttpGuard, onRefused?: (refusal: GuardRefusal, request: FastifyRequest) => void): void {
  app.addHook("onRequest", (request, reply, done) => {
    const refusal = guard.check(request.headers, request.raw.socket.localPort);
    if (refusal === undefined) {
      done();
      return;
    }
    onRefused?.(refusal, request);
    // The body (if any) is never read: close the connection rather than keep it for a hostile page.
    void reply.code(GUARD_REFUSAL_STATUS).header("connection", "close").send({ code: refusal.code, message: refusal.message });
  });
}

/**
 * Log lines for refusals, at most one per `intervalMs` per code, each saying how many were not logged since: a
 * hostile page can send thousands of requests, and the log must stay readable.
 */
export class RefusalLogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs = 10_000) {}

  /** Undefined: do not log this one. Otherwise: log it, with `suppressed` earlier refusals not logged. */
  note(code: string, now = Date.now()): { suppressed: number } | undefined {
    const entry = this.last.get(code);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(code, { at: now, suppressed: 0 });
    return { suppressed };
  }
}
