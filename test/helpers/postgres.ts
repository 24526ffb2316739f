/**
 * A private PostgreSQL server for one test file: initdb + pg_ctl in a temporary directory, run as an
 * unprivileged system user (PostgreSQL refuses to run as root), listening only on 127.0.0.1 at a free port,
 * fsync left on (the tests are about durability), scram-sha-256 password authentication. The password lives
 * only in a 0600 file and in the client's connection config: never on a command line or in a child's env.
 */
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";
import { freePort } from "./ports.js";

const run = promisify(execFile);

/** The unprivileged owner of the test servers when the tests run as root. */
const PG_TEST_USER = "vigil-pgtest";
const ROLE = "vigil";

export interface TestPostgres {
  /** postgres://vigil@127.0.0.1:PORT/postgres (no password: see passwordFile). */
  url: string;
  /** The role's password, in a 0600 file. */
  passwordFile: string;
  /** A fresh, empty database on this server; returns its URL (without password). */
  createDatabase(): Promise<string>;
  /** A superuser connection to one database (for setting up roles, reading raw rows). */
  connect(url?: string): Promise<pg.Client>;
  /** Kills the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint; the next start replays the WAL). */
  stopImmediate(): Promise<void>;
  /** Starts it again on the same data directory and port (after stopImmediate). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The highest installed version's bin directory (Debian's package `postgresql`), not whatever PATH says. */
export function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install the Debian package `postgresql` (apt-get install postgresql)");
  }
  return path.join(root, versions[0]!, "bin");
}

/** As root: the system user that owns the servers (created once); otherwise the tests' own user. */
export async function serverUser(): Promise<{ uid: number; gid: number; prefix: string[] } | null> {
  if (process.getuid?.() !== 0) return null;
  try {
    await run("id", ["-u", PG_TEST_USER]);
  } catch {
    await run("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_TEST_USER]).catch((err) => {
      // Another test file may have created it at the same moment.
      if (!/already exists/.test(String(err.stderr))) throw err;
    });
  }
  const uid = Number((await run("id", ["-u", PG_TEST_USER])).stdout.trim());
  const gid = Number((await run("id", ["-g", PG_TEST_USER])).stdout.trim());
  return { uid, gid, prefix: ["runuser", "-u", PG_TEST_USER, "--"] };
}

/**
 * Starts a server; call stop() (e.g. in afterAll) to shut it down and remove its directory. With `tls`, it also
 * accepts TLS with that certificate and key (PEM files, copied: the server wants its key 0600 and its own).
 */
export async function startPostgres(options: { tls?: { cert: string; key: string }; fsync?: "on" | "off" } = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const user = await serverUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vigil-pg-"));
  const data = path.join(dir, "data");
  const passwordFile = path.join(dir, "password");
  const password = crypto.randomBytes(18).toString("base64url");
  fs.writeFileSync(passwordFile, password, { mode: 0o600 });
  if (user) {
    fs.chownSync(dir, user.uid, user.gid);
    fs.chownSync(passwordFile, user.uid, user.gid);
  }
  fs.chmodSync(dir, 0o700);
  const as = (cmd: string, args: string[]) => (user ? run(user.prefix[0]!, [...user.prefix.slice(1), cmd, ...args]) : run(cmd, args));

  await as(path.join(bin, "initdb"), ["-D", data, "-U", ROLE, `--pwfile=${passwordFile}`, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"]);
  const port = await freePort();
  let opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=${options.fsync ?? "on"} -c synchronous_commit=on -c max_connections=200`;
  if (options.tls) {
    for (const [from, to] of [
      [options.tls.cert, "server.crt"],
      [options.tls.key, "server.key"],
    ] as const) {
      fs.copyFileSync(from, path.join(dir, to));
      fs.chmodSync(path.join(dir, to), 0o600);
      if (user) fs.chownSync(path.join(dir, to), user.uid, user.gid);
    }
    opts += ` -c ssl=on -c ssl_cert_file=${path.join(dir, "server.crt")} -c ssl_key_file=${path.join(dir, "server.key")}`;
  }
  const pgStart = () => as(path.join(bin, "pg_ctl"), ["start", "-D", data, "-w", "-t", "30", "-l", path.join(dir, "server.log"), "-o", opts]);
  await pgStart();

  const url = `postgres://${ROLE}@127.0.0.1:${port}/postgres`;
  let stopped = false;
  let counter = 0;
  const connect = async (to = url) => {
    const client = new pg.Client(toPoolConfig({ url: to, password }));
    await client.connect();
    return client;
  };
  return {
    url,
    passwordFile,
    connect,
    async createDatabase() {
      const name = `t${process.pid}_${counter++}`;
      const admin = await connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return `postgres://${ROLE}@127.0.0.1:${port}/${name}`;
    },
    async stopImmediate() {
      await as(path.join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "immediate", "-w"]);
    },
    async start() {
      await pgStart();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        // Not running (a test stopped it with stopImmediate and failed before start()): nothing to stop.
        if (fs.existsSync(path.join(data, "postmaster.pid"))) await as(path.join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "fast", "-w"]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
