/**
 * A Patroni pair for one test file, on loopback in a temporary directory: one etcd (Debian's 3.4, v3 API),
 * two Patroni members pg1 and pg2 running PostgreSQL from /usr/lib/postgresql/<newest>/bin as the unprivileged
 * test user (PostgreSQL refuses root), and an HAProxy in front that sends connections only to the member whose
 * Patroni REST API answers `GET /primary` with 200. Patroni's and HAProxy's configs are the shipped
 * deploy/patroni/patroni.yml and deploy/haproxy/vigil-postgres.cfg with only names, addresses, ports, paths and
 * passwords replaced, so the tests run the files operators install.
 *
 * Passwords: Patroni's (superuser, replication, rewind) are only in its 0600 config file in the temp dir; the
 * role `vigil`'s only in a 0600 file and in this process's memory. None is on a command line or in an env.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { toPoolConfig } from "../../slashing-db/postgres/config.js";
import { freePort } from "./ports.js";
import { postgresBinDir, serverUser } from "./postgres.js";
import { haproxyServers } from "./haproxy.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const PATRONI_TEMPLATE = path.join(ROOT, "deploy/patroni/patroni.yml");
export const HAPROXY_POSTGRES_TEMPLATE = path.join(ROOT, "deploy/haproxy/vigil-postgres.cfg");

const MEMBERS = ["pg1", "pg2"] as const;
const ROLE = "vigil";
const DATABASE = "vigil";

export interface PatroniCluster {
  /** postgres://vigil@127.0.0.1:PORT/vigil through the HAProxy that follows the leader (no password: see passwordFile). */
  url: string;
  passwordFile: string;
  /** Direct URL of one member's PostgreSQL (no password), e.g. to read the history on the new primary. */
  memberUrl(member: string): string;
  /** Current leader per Patroni's REST API ("pg1" | "pg2"), or undefined while there is none. */
  leader(): Promise<string | undefined>;
  /** kill -9 the current primary's postmaster; returns which member and when (Date.now()). */
  killPrimaryPostmaster(): Promise<{ member: string; killedAtMs: number }>;
  /** Waits until another member than `old` is leader and accepts a write through `url`; returns it and when
   *  Patroni promoted it (from its log or REST API) and when the write through `url` first succeeded. */
  waitForNewPrimary(old: string, timeoutMs: number): Promise<{ member: string; promotedAtMs: number; writableAtMs: number }>;
  /** Directory with etcd/patroni/postgres/haproxy logs. */
  logDir: string;
  stop(): Promise<void>;
  /** HAProxy's runtime API (admin level): `show stat`, or putting a member in or out of rotation by hand. */
  haproxySocket: string;
  /** Every member as Patroni's REST API `GET /cluster` lists it (role leader | sync_standby | replica, state running | starting | stopped…). */
  members(): Promise<PatroniMember[]>;
}

export interface PatroniMember {
  name: string;
  role: string;
  state: string;
  timeline?: number;
}

/** Whether the Debian packages this helper needs are installed; a reason when not. */
export function patroniMissing(): string | undefined {
  const missing = ["patroni", "etcd", "haproxy"].filter((bin) => {
    try {
      execFileSync(bin, ["--version"], { stdio: "ignore" });
      return false;
    } catch {
      // haproxy has -v, not --version
      if (bin !== "haproxy") return true;
      try {
        execFileSync(bin, ["-v"], { stdio: "ignore" });
        return false;
      } catch {
        return true;
      }
    }
  });
  return missing.length === 0 ? undefined : `${missing.join(", ")} not installed: install the Debian packages patroni, etcd-server and haproxy`;
}

interface MemberPorts {
  pg: number;
  rest: number;
}

/** Replaces one line's match in a shipped file; a template that no longer has the line is an error, not a no-op. */
function replaceIn(text: string, file: string, re: RegExp, by: string): string {
  if (!re.test(text)) throw new Error(`${path.relative(ROOT, file)} has no line matching ${re}`);
  return text.replace(re, by);
}

/** deploy/patroni/patroni.yml for one member on loopback. */
export function renderPatroniConfig(opts: {
  name: string;
  ports: MemberPorts;
  etcdPort: number;
  dataDir: string;
  binDir: string;
  pgpass: string;
  socketDir: string;
  passwords: { superuser: string; replication: string; rewind: string };
}): string {
  const f = PATRONI_TEMPLATE;
  let t = fs.readFileSync(f, "utf8");
  t = replaceIn(t, f, /^name: pg1$/m, `name: ${opts.name}`);
  t = replaceIn(t, f, /^( {2}(listen|connect_address): )10\.0\.0\.11:8008$/gm, `$1127.0.0.1:${opts.ports.rest}`);
  t = replaceIn(t, f, /^( {2}hosts: )10\.0\.0\.11:2379,10\.0\.0\.12:2379,10\.0\.0\.13:2379$/m, `$1127.0.0.1:${opts.etcdPort}`);
  t = replaceIn(t, f, /^( {2}(listen|connect_address): )10\.0\.0\.11:5432$/gm, `$1127.0.0.1:${opts.ports.pg}`);
  t = replaceIn(t, f, /^( {2}data_dir: ).*$/m, `$1${opts.dataDir}`);
  t = replaceIn(t, f, /^( {2}bin_dir: ).*$/m, `$1${opts.binDir}`);
  t = replaceIn(t, f, /^( {2}pgpass: ).*$/m, `$1${opts.pgpass}`);
  t = replaceIn(t, f, /^( {4}unix_socket_directories: ).*$/m, `$1${opts.socketDir}`);
  t = replaceIn(t, f, /10\.0\.0\.0\/24/g, "127.0.0.1/32");
  for (const who of ["superuser", "replication", "rewind"] as const) {
    t = replaceIn(t, f, new RegExp(`CHANGE-ME-${who}-password`), opts.passwords[who]);
  }
  return t;
}

/** deploy/haproxy/vigil-postgres.cfg in front of the members. */
export function renderHaproxyPostgresConfig(port: number, socket: string, members: [string, MemberPorts][]): string {
  const f = HAPROXY_POSTGRES_TEMPLATE;
  let t = fs.readFileSync(f, "utf8");
  t = replaceIn(t, f, /^(\s+bind )127\.0\.0\.1:5000$/m, `$1127.0.0.1:${port}`);
  t = replaceIn(t, f, /^(\s+stats socket )\/run\/haproxy\/vigil-postgres\.sock /m, `$1${socket} `);
  t = replaceIn(t, f, /^\s+server pg\d+ .*\n/gm, "");
  t += members.map(([name, p]) => `    server ${name} 127.0.0.1:${p.pg} port ${p.rest}\n`).join("");
  // Not root: HAProxy cannot switch to the haproxy user, and need not.
  if (process.getuid?.() !== 0) t = t.replace(/^\s+(user|group) haproxy\n/gm, "");
  return t;
}

async function getJson(url: string, timeoutMs = 1_000): Promise<{ status: number; body: unknown } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, body };
  } catch {
    return undefined;
  }
}

async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, detail: () => string = () => ""): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms ${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Patroni's log time ("2026-11-30 07:40:01,123", local time) as Date.now() units. */
function patroniLogTime(stamp: string): number {
  return new Date(stamp.replace(" ", "T").replace(",", ".")).getTime();
}

/**
 * Starts etcd, pg1 (which bootstraps the cluster), then pg2 (a copy of pg1 that becomes its synchronous
 * standby), creates the role `vigil` and its database, and starts HAProxy; resolves once only the primary is
 * UP in HAProxy and a write through it succeeds. stop() stops everything and removes the temp dir (a `dir` the
 * caller gave is left in place, logs included).
 */
export async function startPatroniPair(opts: { dir?: string } = {}): Promise<PatroniCluster> {
  const bin = postgresBinDir();
  const user = await serverUser();
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "vigil-patroni-"));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logDir = path.join(dir, "logs");
  fs.mkdirSync(logDir, { recursive: true });
  const own = (p: string) => {
    if (user) fs.chownSync(p, user.uid, user.gid);
  };
  own(dir);
  fs.chmodSync(dir, 0o700);
  own(logDir);

  const secret = () => crypto.randomBytes(18).toString("base64url");
  const passwords = { superuser: secret(), replication: secret(), rewind: secret() };
  const vigilPassword = secret();
  const passwordFile = path.join(dir, "vigil.password");
  fs.writeFileSync(passwordFile, vigilPassword, { mode: 0o600 });

  const children: ChildProcess[] = [];
  const exited = new Map<ChildProcess, Promise<void>>();
  const launch = (name: string, cmd: string, args: string[], asUser: boolean): ChildProcess => {
    const log = fs.openSync(path.join(logDir, `${name}.log`), "a");
    const [c, a] = asUser && user ? [user.prefix[0]!, [...user.prefix.slice(1), cmd, ...args]] : [cmd, args];
    const child = spawn(c, a, { stdio: ["ignore", log, log], env: process.env });
    fs.closeSync(log);
    children.push(child);
    exited.set(child, new Promise((resolve) => child.once("exit", () => resolve())));
    return child;
  };
  const logOf = (name: string) => {
    try {
      return fs.readFileSync(path.join(logDir, `${name}.log`), "utf8");
    } catch {
      return "";
    }
  };

  const ports = new Map<string, MemberPorts>();
  const dataDir = (m: string) => path.join(dir, m, "data");
  let haproxyPort = 0;
  const haproxySocket = path.join(dir, "haproxy.sock");
  let stopped = false;
  const rest = (m: string) => `http://127.0.0.1:${ports.get(m)!.rest}`;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Patroni stops its PostgreSQL on SIGTERM (runuser passes the signal on); then anything left is killed.
    for (const child of children) child.kill("SIGTERM");
    const all = Promise.all([...exited.values()]);
    const timer = setTimeout(() => {
      for (const child of children) child.kill("SIGKILL");
    }, 15_000);
    await all;
    clearTimeout(timer);
    for (const m of MEMBERS) {
      const pid = postmasterPid(dataDir(m));
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
    if (opts.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // etcd: one member, loopback only. Debian's 3.4 serves the v3 API Patroni's `etcd3` section speaks.
    const [etcdPort, etcdPeer] = [await freePort(), await freePort()];
    const etcdData = path.join(dir, "etcd");
    launch(
      "etcd",
      "etcd",
      [
        "--name=etcd1",
        `--data-dir=${etcdData}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=etcd1=http://127.0.0.1:${etcdPeer}`,
        "--initial-cluster-state=new",
        "--log-level=warn",
        "--logger=zap",
      ],
      false,
    );
    await waitUntil(
      "etcd healthy",
      20_000,
      async () => ((await getJson(`http://127.0.0.1:${etcdPort}/health`))?.status === 200 ? true : undefined),
      () => logOf("etcd"),
    );

    for (const m of MEMBERS) {
      ports.set(m, { pg: await freePort(), rest: await freePort() });
      const memberDir = path.join(dir, m);
      fs.mkdirSync(memberDir, { mode: 0o700 });
      own(memberDir);
      const config = path.join(memberDir, "patroni.yml");
      fs.writeFileSync(
        config,
        renderPatroniConfig({
          name: m,
          ports: ports.get(m)!,
          etcdPort,
          dataDir: dataDir(m),
          binDir: bin,
          pgpass: path.join(memberDir, "pgpass"),
          socketDir: memberDir,
          passwords,
        }),
        { mode: 0o600 },
      );
      own(config);
    }

    // pg1 first: it initialises the cluster; pg2 then copies it (pg_basebackup) and becomes the sync standby.
    launch("pg1", "patroni", [path.join(dir, "pg1", "patroni.yml")], true);
    await waitUntil(
      "pg1 primary",
      60_000,
      async () => ((await getJson(`${rest("pg1")}/primary`))?.status === 200 ? true : undefined),
      () => logOf("pg1"),
    );
    launch("pg2", "patroni", [path.join(dir, "pg2", "patroni.yml")], true);
    await waitUntil(
      "pg2 synchronous standby",
      60_000,
      async () => ((await getJson(`${rest("pg2")}/sync`))?.status === 200 ? true : undefined),
      () => logOf("pg2"),
    );

    // The role and database the signers use, created on the primary by the superuser (password in memory only).
    const admin = new pg.Client({ host: "127.0.0.1", port: ports.get("pg1")!.pg, user: "postgres", password: passwords.superuser, database: "postgres" });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD ${admin.escapeLiteral(vigilPassword)}`);
      await admin.query(`CREATE DATABASE ${DATABASE} OWNER ${ROLE}`);
    } finally {
      await admin.end();
    }

    haproxyPort = await freePort();
    const haproxyCfg = path.join(dir, "haproxy-postgres.cfg");
    fs.writeFileSync(haproxyCfg, renderHaproxyPostgresConfig(haproxyPort, haproxySocket, [...ports.entries()]), { mode: 0o600 });
    // The shipped config must check clean: no warning, no alert (e.g. missing timeouts), not just "valid".
    const checked = spawnSync("haproxy", ["-c", "-f", haproxyCfg], { encoding: "utf8" });
    if (checked.status !== 0 || /\[(WARNING|ALERT)\]/.test(checked.stdout + checked.stderr)) {
      throw new Error(`haproxy -c on deploy/haproxy/vigil-postgres.cfg:\n${checked.stdout}${checked.stderr}`);
    }
    launch("haproxy", "haproxy", ["-db", "-f", haproxyCfg], false);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  const url = `postgres://${ROLE}@127.0.0.1:${haproxyPort}/${DATABASE}`;

  /** One durable write through `to` (a transaction id committed with synchronous_commit on). */
  const writeOnce = async (to: string): Promise<boolean> => {
    const client = new pg.Client({ ...toPoolConfig({ url: to, password: vigilPassword }), connectionTimeoutMillis: 1_000 });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.query("BEGIN; SET LOCAL synchronous_commit TO on; SELECT txid_current(); COMMIT");
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  /** The cluster as the first member that answers sees it (each reads it from etcd). */
  const members = async (): Promise<PatroniMember[]> => {
    for (const m of MEMBERS) {
      const cluster = (await getJson(`${rest(m)}/cluster`))?.body as { members?: PatroniMember[] } | undefined;
      if (cluster?.members) return cluster.members;
    }
    return [];
  };
  const leader = async (): Promise<string | undefined> => (await members()).find((x) => x.role === "leader")?.name;

  try {
    // HAProxy 2.6 starts every server UP until its first check fails: wait until only the leader is, so that no
    // test meets a standby by accident.
    await waitUntil(
      "HAProxy: the leader UP, the standby DOWN",
      20_000,
      async () => {
        const status = await haproxyStatus(haproxySocket).catch(() => undefined);
        return status?.get("pg1") === "UP" && status.get("pg2")?.startsWith("DOWN") ? true : undefined;
      },
      () => logOf("haproxy"),
    );
    await waitUntil(
      "a write through HAProxy",
      20_000,
      async () => ((await writeOnce(url)) ? true : undefined),
      () => logOf("haproxy"),
    );
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }

  return {
    url,
    passwordFile,
    logDir,
    haproxySocket,
    memberUrl: (m) => `postgres://${ROLE}@127.0.0.1:${ports.get(m)!.pg}/${DATABASE}`,
    leader,
    members,
    async killPrimaryPostmaster() {
      const member = await leader();
      if (member === undefined) throw new Error("no leader to kill");
      const pid = postmasterPid(dataDir(member));
      if (pid === undefined) throw new Error(`${member} has no postmaster.pid`);
      process.kill(pid, "SIGKILL");
      return { member, killedAtMs: Date.now() };
    },
    async waitForNewPrimary(old, timeoutMs) {
      const start = Date.now();
      const member = await waitUntil(`a leader other than ${old}`, timeoutMs, async () => {
        const now = await leader();
        return now !== undefined && now !== old ? now : undefined;
      });
      await waitUntil(
        "a write through HAProxy",
        Math.max(0, timeoutMs - (Date.now() - start)),
        async () => ((await writeOnce(url)) ? true : undefined),
        () => logOf("haproxy"),
      );
      const writableAtMs = Date.now();
      // Patroni's own record of the moment it took the leader key and promoted its PostgreSQL.
      const promotions = [...logOf(member).matchAll(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: promoted self to leader/gm)];
      const last = promotions.at(-1);
      if (!last) throw new Error(`${member} is leader but its log has no "promoted self to leader":\n${logOf(member)}`);
      return { member, promotedAtMs: patroniLogTime(last[1]!), writableAtMs };
    },
    stop,
  };
}

/** Each member's status in HAProxy's backend (UP, DOWN, "DOWN 1/2", MAINT…), from the runtime API's `show stat`. */
export async function haproxyStatus(socket: string): Promise<Map<string, string>> {
  const servers = await haproxyServers(socket, "vigil_postgres_primary");
  return new Map([...servers].filter(([name]) => /^pg\d$/.test(name)).map(([name, s]) => [name, s.status]));
}

/**
 * The postmaster's pid from its data directory, if it has one and that process is still this data directory's
 * postgres (a stale file's pid may belong to another process by now: that one must never be killed).
 */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmdline[0]?.endsWith("/postgres") && cmdline.includes(dataDir) ? pid : undefined;
  } catch {
    return undefined;
  }
}
