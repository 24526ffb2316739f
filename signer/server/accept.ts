/**
 * Accept-header negotiation for signatures, as Web3Signer does it: JSON `{"signature":"0x…"}` when Accept is
 * absent, `*\/*` or JSON; the bare hex when text/plain is preferred. Clients send the same header every time,
 * so results are cached per header value.
 */
export type ReplyFormat = "json" | "text" | "none";

const cache = new Map<string, ReplyFormat>();

export function replyFormat(accept: string | undefined): ReplyFormat {
  if (accept === undefined || accept === "" || accept === "*/*" || accept === "application/json") return "json";
  const cached = cache.get(accept);
  if (cached !== undefined) return cached;
  const format = negotiate(accept);
  if (cache.size < 256) cache.set(accept, format);
  return format;
}

function negotiate(accept: string): ReplyFormat {
  let best: ReplyFormat = "none";
  let bestQ = 0;
  for (const part of accept.split(",")) {
    const [rawType, ...params] = part.trim().split(";");
    const type = (rawType ?? "").trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    let format: ReplyFormat = "none";
    if (type === "application/json" || type === "application/*" || type === "*/*") format = "json";
    else if (type === "text/plain" || type === "text/*") format = "text";
    // Ties keep the earlier entry; JSON wins over a wildcard-only text match at equal q.
    if (format !== "none" && q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  return best;
}
