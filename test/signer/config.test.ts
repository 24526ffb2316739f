// The signer config: every mistake is refused at start-up with an error naming the field.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadSignerConfig, parseSignerConfig, SignerConfigError } from "../../signer/index.js";
import { toPoolConfig } from "../../slashing-db/index.js";
import { tempDir } from "../helpers/tmp.js";

const base = {
  network: "mainnet",
  hsm: { module: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "t", pin: { file: "pin" } },
};

/** The TLS mode a PostgreSQL slashingDb section resolves to. */
function pgMode(postgres: Record<string, unknown>): string | undefined {
  const location = parseSignerConfig({ ...base, slashingDb: { postgres } }, "/etc/vigil").slashingDb;
  return location.kind === "postgres" ? location.connection.tls?.mode : undefined;
}

function fieldOf(value: unknown): string {
  try {
    parseSignerConfig(value, "/etc/vigil");
  } catch (err) {
    expect(err).toBeInstanceOf(SignerConfigError);
    return (err as SignerConfigError).field;
  }
  throw new Error("accepted");
}

describe("signer config", () => {
  it("workers: 1 by default; more only with PostgreSQL; a count, not anything else", () => {
    expect(parseSignerConfig(base, "/etc/vigil").workers).toBe(1);
    const pg = { ...base, slashingDb: { postgres: { url: "postgres://vigil@db/vigil", passwordFile: "pw" } } };
    expect(parseSignerConfig({ ...pg, workers: 16 }, "/etc/vigil").workers).toBe(16);
    expect(fieldOf({ ...base, workers: 2 })).toBe("workers");
    for (const bad of [0, -1, 1.5, "4", 257]) expect(fieldOf({ ...pg, workers: bad })).toBe("workers");
  });

  it("fills defaults and resolves paths against the config's directory", () => {
    const c = parseSignerConfig({ ...base, dataDir: "data" }, "/etc/vigil");
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 9000 });
    expect(c.dataDir).toBe("/etc/vigil/data");
    expect(c.slashingDb).toEqual({ kind: "sqlite", path: "/etc/vigil/data/slashing-protection.sqlite" });
    expect(c.hsm.pin).toEqual({ file: "/etc/vigil/pin" });
    expect(c.network.name).toBe("mainnet");
    expect(c.keymanager.enabled).toBe(false);
    expect(c.metrics).toEqual({ enabled: true });
  });

  it("takes a custom network object", () => {
    const c = parseSignerConfig({
      ...base,
      network: { name: "dev", preset: "minimal", genesisForkVersion: "0x00000001", forkVersions: { ALTAIR: "0x01000001" } },
    });
    expect(c.network.preset).toBe("minimal");
  });

  it.each([
    [{ ...base, network: "goerli" }, "network"],
    [{ ...base, network: { name: "x", preset: "tiny", genesisForkVersion: "0x00000000" } }, "network"],
    [{ ...base, listen: { port: 70000 } }, "listen.port"],
    [{ ...base, lisen: {} }, "lisen"],
    [{ ...base, genesisValidatorsRoot: "0x12" }, "genesisValidatorsRoot"],
    [{ ...base, hsm: { module: "/x.so", tokenLabel: "t" } }, "hsm.pin"],
    [{ ...base, clients: [{ id: "a b", tokenFile: "t", keys: "*" }] }, "clients[0].id"],
    [{ ...base, clients: [{ id: "a", keys: "*" }] }, "clients[0]"],
    [{ ...base, clients: [{ id: "a", tokenFile: "t" }] }, "clients[0].keys"],
    [{ ...base, clients: [{ id: "a", tokenFile: "t", keys: ["0x12"] }] }, "clients[0].keys[0]"],
    [
      {
        ...base,
        clients: [
          { id: "a", tokenFile: "t", keys: "*" },
          { id: "a", tokenFile: "u", keys: "*" },
        ],
      },
      "clients[1].id",
    ],
    [{ ...base, clients: [{ id: "a", tlsClientCertSha256: "zz", keys: "*" }] }, "clients[0].tlsClientCertSha256"],
    [{ ...base, clients: [{ id: "a", listen: { port: 9000 }, keys: "*" }] }, "clients[0].listen"],
    [{ ...base, clients: [{ id: "a", tlsClientCertSha256: "AB".repeat(32), keys: "*" }] }, "clients[0].tlsClientCertSha256"],
    [{ ...base, limits: { maxQueueDepth: 0 } }, "limits.maxQueueDepth"],
    [{ ...base, limits: { bodyLimitBytes: "1MB" } }, "limits.bodyLimitBytes"],
    [{ ...base, limits: { maxWaitMs: 0 } }, "limits.maxWaitMs"],
    [{ ...base, limits: { maxConnections: 1 } }, "limits.maxConnections"],
    [{ ...base, limits: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } }, "limits.requestTimeoutMs"],
    [{ ...base, limits: { idleTimeoutMs: -1 } }, "limits.idleTimeoutMs"],
    [{ ...base, keymanager: { enabled: "yes" } }, "keymanager.enabled"],
    [{ ...base, metrics: { host: "0.0.0.0" } }, "metrics.port"],
    [{ ...base, tls: { cert: "c" } }, "tls.key"],
    [{ ...base, logLevel: "loud" }, "logLevel"],
  ])("refuses %j naming %s", (value, field) => {
    expect(fieldOf(value)).toBe(field);
  });

  it("refuses a PIN written inline (the key store's own rule)", () => {
    expect(() => parseSignerConfig({ ...base, hsm: { ...base.hsm, pin: "1234" } })).toThrow(/never the PIN/);
  });

  it("loads the shipped example", () => {
    const example = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples/signer.example.json");
    const c = loadSignerConfig(example);
    expect(c.clients?.map((x) => x.id)).toEqual(["primary", "backup", "teku-1"]);
  });

  it("loads the shipped PostgreSQL example", () => {
    const example = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples/signer.postgres.example.json");
    expect(loadSignerConfig(example).slashingDb).toMatchObject({ kind: "postgres", connection: { passwordCredential: "db-password" } });
  });

  it("slashingDb: the old file form, {sqlite: {path}} and {postgres: {…}} resolve to one location type", () => {
    expect(parseSignerConfig({ ...base, slashingDb: "db.sqlite" }, "/etc/vigil").slashingDb).toEqual({ kind: "sqlite", path: "/etc/vigil/db.sqlite" });
    expect(parseSignerConfig({ ...base, slashingDb: { sqlite: { path: "/srv/db.sqlite" } } }, "/etc/vigil").slashingDb).toEqual({
      kind: "sqlite",
      path: "/srv/db.sqlite",
    });
    const pg = parseSignerConfig(
      {
        ...base,
        slashingDb: {
          postgres: {
            url: "postgres://vigil@db:5432/vigil",
            passwordFile: "db.password",
            tls: { mode: "verify-full", ca: "ca.pem", cert: "c.pem", key: "k.pem" },
            poolSize: 8,
            allowServerAsyncCommitDefault: true,
          },
        },
      },
      "/etc/vigil",
    ).slashingDb;
    expect(pg).toEqual({
      kind: "postgres",
      connection: {
        url: "postgres://vigil@db:5432/vigil",
        passwordFile: "/etc/vigil/db.password",
        tls: { mode: "verify-full", ca: "/etc/vigil/ca.pem", cert: "/etc/vigil/c.pem", key: "/etc/vigil/k.pem" },
        poolSize: 8,
        allowServerAsyncCommitDefault: true,
      },
    });
  });

  it("slashingDb.postgres: host/port/database/user instead of url, encoded into the same connection", () => {
    const pgOf = (postgres: Record<string, unknown>) => {
      const location = parseSignerConfig({ ...base, slashingDb: { postgres } }, "/etc/vigil").slashingDb;
      if (location.kind !== "postgres") throw new Error("not a PostgreSQL location");
      return location.connection;
    };
    const plain = pgOf({ host: "db.internal", port: 6432, database: "vigil", user: "vigil_signer", passwordCredential: "db-password", poolSize: 6 });
    expect(plain).toEqual({ url: "postgres://vigil_signer@db.internal:6432/vigil", passwordCredential: "db-password", poolSize: 6 });
    expect(pgOf({ host: "10.0.0.5", database: "vigil", user: "vigil" }).url).toBe("postgres://vigil@10.0.0.5:5432/vigil");
    // names that would break a hand-written URL mean themselves; a host starting with / is the socket's directory
    const odd = pgOf({ host: "/var/run/postgresql", port: 5433, database: "vigil/main db", user: "ops@vigil%1" });
    expect(toPoolConfig(odd, {})).toMatchObject({ host: "/var/run/postgresql", port: 5433, database: "vigil/main db", user: "ops@vigil%1" });
  });

  it("slashingDb.postgres: url or host/port/database/user, exactly one form, each part checked", () => {
    const refusal = (postgres: Record<string, unknown>) => {
      try {
        parseSignerConfig({ ...base, slashingDb: { postgres } }, "/etc/vigil");
      } catch (err) {
        expect(err).toBeInstanceOf(SignerConfigError);
        return { field: (err as SignerConfigError).field, message: (err as Error).message };
      }
      throw new Error("accepted");
    };
    const parts = { host: "db", database: "vigil", user: "vigil" };
    const mixed = refusal({ url: "postgres://vigil@db/vigil", database: "other", user: "vigil" });
    expect(mixed.field).toBe("slashingDb.postgres.database");
    expect(mixed.message).toMatch(/url and database, user/);
    expect(refusal({}).field).toBe("slashingDb.postgres.url");
    expect(refusal({ host: "db", user: "vigil" }).field).toBe("slashingDb.postgres.database");
    expect(refusal({ host: "db", database: "vigil" }).field).toBe("slashingDb.postgres.user");
    expect(refusal({ database: "vigil", user: "vigil" }).field).toBe("slashingDb.postgres.host");
    expect(refusal({ ...parts, host: "db:5432" }).field).toBe("slashingDb.postgres.host");
    expect(refusal({ ...parts, host: "vigil@db" }).field).toBe("slashingDb.postgres.host");
    expect(refusal({ ...parts, host: "" }).field).toBe("slashingDb.postgres.host");
    expect(refusal({ ...parts, port: 0 }).field).toBe("slashingDb.postgres.port");
    expect(refusal({ ...parts, port: "5432" }).field).toBe("slashingDb.postgres.port");
    expect(refusal({ ...parts, host: "/run/postgresql", tls: { mode: "require" } }).field).toBe("slashingDb.postgres.tls.mode");
    expect(pgMode({ ...parts, host: "/run/postgresql", tls: { mode: "disable" } })).toBe("disable");
  });

  it("slashingDb.postgres: a password is refused wherever it is written, without echoing it", () => {
    const pgWith = (postgres: Record<string, unknown>) => ({ ...base, slashingDb: { postgres: { url: "postgres://vigil@db/vigil", ...postgres } } });
    expect(fieldOf(pgWith({ password: "hunter2" }))).toBe("slashingDb.postgres.password");
    expect(fieldOf(pgWith({ url: "postgres://vigil:hunter2@db/vigil" }))).toBe("slashingDb.postgres.url");
    try {
      parseSignerConfig(pgWith({ url: "postgres://vigil:hunter2@db/vigil" }));
    } catch (err) {
      expect((err as Error).message).not.toContain("hunter2");
    }
    expect(fieldOf(pgWith({ url: "postgres://vigil@db/vigil?sslmode=require" }))).toBe("slashingDb.postgres.url");
    expect(fieldOf(pgWith({ url: "mysql://vigil@db/vigil" }))).toBe("slashingDb.postgres.url");
    expect(fieldOf(pgWith({ passwordFile: "a", passwordCredential: "b" }))).toBe("slashingDb.postgres.passwordCredential");
    expect(fieldOf(pgWith({ passwordCredential: "../etc/shadow" }))).toBe("slashingDb.postgres.passwordCredential");
    expect(fieldOf(pgWith({ poolSize: 0 }))).toBe("slashingDb.postgres.poolSize");
    expect(fieldOf(pgWith({ tls: { mode: "prefer" } }))).toBe("slashingDb.postgres.tls.mode");
    expect(fieldOf(pgWith({ tls: { mode: "require", cert: "c.pem" } }))).toBe("slashingDb.postgres.tls");
    expect(fieldOf(pgWith({ host: "db" }))).toBe("slashingDb.postgres.host");
    expect(fieldOf({ ...base, slashingDb: { sqlite: { path: "a" }, postgres: {} } })).toBe("slashingDb");
    expect(fieldOf({ ...base, slashingDb: { mysql: {} } })).toBe("slashingDb");
    expect(fieldOf({ ...base, slashingDb: { sqlite: { file: "a" } } })).toBe("slashingDb.sqlite.file");
  });

  it("reports unreadable files and bad JSON", () => {
    const dir = tempDir();
    expect(() => loadSignerConfig(path.join(dir, "missing.json"))).toThrow(/cannot read config/);
    fs.writeFileSync(path.join(dir, "bad.json"), "{");
    expect(() => loadSignerConfig(path.join(dir, "bad.json"))).toThrow(SignerConfigError);
  });
});
