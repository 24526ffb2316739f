/**
 * The shipped HAProxy config (deploy/haproxy/vigil-signers.cfg) rendered for a test, and HAProxy's runtime API.
 * Rendering changes only what a test must: the listen port, the health check's Host (the same port), the stats
 * socket and the server lines. `perClient` adds, for validator clients that cannot authenticate (one dedicated
 * listener per client at every signer), a copy of the shipped frontend and backend per client: same settings,
 * its own port, its servers that client's listeners.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const SHIPPED_HAPROXY_CONFIG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../deploy/haproxy/vigil-signers.cfg");
export const SHIPPED_FRONTEND = "vigil_signer";
export const SHIPPED_BACKEND = "vigil_signers";

export interface HaproxyRender {
  /** The shipped frontend's port. */
  port: number;
  socket: string;
  /** The shipped backend's servers: signer URLs (their main listeners). */
  servers: string[];
  /** Per client id: its frontend's port and its listener URL at each signer (same order as `servers`). */
  perClient?: Record<string, { port: number; servers: string[] }>;
}

/** One section ("frontend NAME" / "backend NAME" up to the next unindented line) of a config text. */
function section(text: string, kind: "frontend" | "backend", name: string): string {
  const m = new RegExp(`^${kind} ${name}\\n(?:(?:[ \\t].*)?\\n)*`, "m").exec(text);
  if (!m) throw new Error(`the shipped config has no "${kind} ${name}" section`);
  return m[0];
}

function replaceOnce(text: string, re: RegExp, by: string): string {
  if (!re.test(text)) throw new Error(`the shipped config has no line matching ${re}`);
  return text.replace(re, by);
}

/** Sets a frontend's bind port, its backend's check Host port and its server lines. */
function retarget(front: string, back: string, port: number, servers: string[]): { front: string; back: string } {
  const f = replaceOnce(front, /^(\s+bind )127\.0\.0\.1:9000$/m, `$1127.0.0.1:${port}`);
  let b = replaceOnce(back, /^(\s+http-check send .* hdr Host )localhost:9000$/m, `$1localhost:${port}`);
  b = b.replace(/^\s+server signer\d+ .*\n/gm, "");
  b = b.replace(/\n*$/, "\n");
  b += servers.map((url, i) => `    server signer${i + 1} ${new URL(url).host}\n`).join("");
  return { front: f, back: `${b}\n` };
}

export function renderHaproxyConfig(r: HaproxyRender): string {
  const shipped = fs.readFileSync(SHIPPED_HAPROXY_CONFIG, "utf8");
  const front = section(shipped, "frontend", SHIPPED_FRONTEND);
  const back = section(shipped, "backend", SHIPPED_BACKEND);
  let text = replaceOnce(shipped, /^(\s+stats socket )\/run\/haproxy\/vigil-signers\.sock /m, `$1${r.socket} `);
  const main = retarget(front, back, r.port, r.servers);
  text = text.replace(front, () => main.front).replace(back, () => main.back);
  for (const [id, c] of Object.entries(r.perClient ?? {})) {
    const copy = retarget(front, back, c.port, c.servers);
    text +=
      `\n# Validator client "${id}" (added by the test: its own frontend, its dedicated listener at each signer)\n` +
      copy.front
        .replace(`frontend ${SHIPPED_FRONTEND}\n`, `frontend ${SHIPPED_FRONTEND}_${id}\n`)
        .replace(`default_backend ${SHIPPED_BACKEND}\n`, `default_backend ${SHIPPED_BACKEND}_${id}\n`) +
      "\n" +
      copy.back.replace(`backend ${SHIPPED_BACKEND}\n`, `backend ${SHIPPED_BACKEND}_${id}\n`);
  }
  // Not root: HAProxy cannot switch to the haproxy user, and need not.
  if (process.getuid?.() !== 0) text = text.replace(/^\s+(user|group) haproxy\n/gm, "");
  return text;
}

/** One runtime API command over the stats socket; its whole answer. */
export async function haproxyRuntime(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let out = "";
    conn.on("connect", () => conn.write(`${command}\n`));
    conn.on("data", (d) => (out += d.toString()));
    conn.on("end", () => resolve(out));
    conn.on("error", reject);
  });
}

export interface ServerStat {
  status: string;
  /** Total sessions sent to it. */
  sessions: number;
  /** Sessions on it now (requests in flight): 0 once a drained server is idle. */
  current: number;
}

/** Each server of `backend` (status UP, DOWN, DRAIN, "DOWN 1/2"…, total and current sessions), from `show stat`. */
export async function haproxyServers(socket: string, backend: string): Promise<Map<string, ServerStat>> {
  const [header, ...rows] = (await haproxyRuntime(socket, "show stat")).trim().split("\n");
  const cols = header!.replace(/^# /, "").split(",");
  const at = (row: string[], name: string) => row[cols.indexOf(name)]!;
  const out = new Map<string, ServerStat>();
  for (const line of rows) {
    const row = line.split(",");
    if (at(row, "pxname") === backend && at(row, "svname") !== "BACKEND" && at(row, "svname") !== "FRONTEND") {
      out.set(at(row, "svname"), { status: at(row, "status"), sessions: Number(at(row, "stot")), current: Number(at(row, "scur")) });
    }
  }
  return out;
}
