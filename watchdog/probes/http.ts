/** Outcome of one HTTP call: never throws, so probes can report "unreachable" as data. */
export type HttpResult<T> =
  | { ok: true; status: number; body: T; durationMs: number }
  | { ok: false; status: number | null; error: string; body?: unknown; durationMs: number };

export async function httpJson<T>(
  url: string,
  opts: { method?: "GET" | "POST"; body?: unknown; timeoutMs: number; headers?: Record<string, string> },
): Promise<HttpResult<T>> {
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method: opts.method ?? "GET",
      headers: { accept: "application/json", ...(opts.body !== undefined ? { "content-type": "application/json" } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    const text = await res.text();
    const durationMs = Date.now() - started;
    let body: unknown;
    if (text !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        return { ok: false, status: res.status, error: `HTTP ${res.status}: body is not JSON`, durationMs };
      }
    }
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, body: body as T, durationMs };
    const msg = typeof body === "object" && body !== null && "message" in body ? String((body as { message: unknown }).message) : text.slice(0, 200);
    return { ok: false, status: res.status, error: `HTTP ${res.status}${msg ? `: ${msg}` : ""}`, body, durationMs };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const reason = e.name === "TimeoutError" || e.name === "AbortError" ? `timed out after ${opts.timeoutMs} ms` : (e.cause?.code ?? e.message);
    return { ok: false, status: null, error: reason, durationMs: Date.now() - started };
  }
}
