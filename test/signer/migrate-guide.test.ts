// docs/migrate.md's Vigil-side steps, as an operator follows them: keystores laid out as Lighthouse writes them
// (validators/0x…/voting-keystore.json, the password in secrets/0x… or in validator_definitions.yml) and
// Lighthouse's interchange export are flattened by the guide's own script, imported by the guide's import
// block into the config the signer runs with, checked by its verify block, and the real signer (its own
// process, SoftHSM2 token, SQLite file) then serves the keys and refuses or signs exactly as the imported history
// says; the guide's remotekeys request is built from that signer, and its high-watermark block, run on the
// stopped signer's database, makes it refuse when it comes back. Web3Signer's key config files go through the
// guide's other script. The guide's `clients` config, with certificates made by its own openssl commands, then
// identifies Lighthouse and Teku by certificate and the others by their dedicated listeners.
// Each `<!-- vigil-step: NAME -->` block runs as written, through bash, with only the documented paths and URLs
// replaced by the test's (`guideStep`); `vigil-signer-admin vigil …` runs `vigil …` (the wrapper adds only the
// systemd user and credential, and --config where it is missing, which every step gives).
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { create } from "@chainsafe/bls-keystore";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { TestToken } from "../helpers/softhsm.js";
import { freePort } from "../helpers/ports.js";
import { tempDir } from "../helpers/tmp.js";
import { CHEAP_PBKDF2, randomKey, readyToken } from "../keystore/fixtures.js";
import { CLI, killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig, type SignerProcess } from "./cli-process.js";
import { attestationBody, blockBody, GVR, http } from "./harness.js";

const GUIDE = path.resolve(__dirname, "../../docs/migrate.md");
const work = tempDir("vigil-migrate-guide-");
const keys = [randomKey(), randomKey(), randomKey()];
// `inYaml`: a key whose password Lighthouse keeps in validator_definitions.yml (no file in secrets/).
const [moved, fresh, inYaml] = keys as [ReturnType<typeof randomKey>, ReturnType<typeof randomKey>, ReturnType<typeof randomKey>];
const passwordOf = (i: number) => `password of key ${i}`;
let token: TestToken;
let signer: SignerProcess | undefined;

/** The sh (or json) block after `<!-- marker… -->` in the guide, its list indentation removed. */
function guideBlock(marker: string): string {
  const guide = fs.readFileSync(GUIDE, "utf8");
  const m = new RegExp(`<!-- ${marker}[^>]*-->\\s*\\n( *)\`\`\`(?:sh|json)\\n([\\s\\S]*?)\\1\`\`\``).exec(guide);
  if (!m) throw new Error(`docs/migrate.md lost its block <!-- ${marker} -->`);
  const indent = m[1]!.length;
  return m[2]!
    .split("\n")
    .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
    .join("\n");
}

/** A flatten script with its variable lines (`NAME=…` at the start of a line) set as the operator would. */
function flattenScript(marker: string, vars: Record<string, string>): string {
  const lines = guideBlock(marker).split("\n");
  for (const name of Object.keys(vars)) {
    const at = lines.findIndex((l) => new RegExp(`^(.* )?${name}=`).test(l) && !l.startsWith("#"));
    expect(at, `${marker} sets ${name}`).toBeGreaterThanOrEqual(0);
    lines[at] = Object.entries(vars)
      .filter(([n]) => lines[at]!.includes(`${n}=`))
      .map(([n, v]) => `${n}='${v}'`)
      .join(" ");
  }
  return lines.join("\n");
}

/** Where the guide's systemd paths and URLs are in this test. */
interface Place {
  config: string;
  importDir: string;
  interchange: string;
  db: string;
  url: string;
}

/** Runs a `<!-- vigil-step: NAME -->` block with bash in `cwd`, the guide's paths replaced by `place`'s. */
function guideStep(name: string, place: Place, cwd: string, replace: Record<string, string> = {}): SpawnSyncReturns<string> {
  let block = guideBlock(`vigil-step: ${name}`);
  const paths: [string, string][] = [
    ["/etc/vigil/signer.json", place.config],
    ["/var/lib/vigil/signer/import", place.importDir],
    ["/var/lib/vigil/signer/interchange.json", place.interchange],
    ["/var/lib/vigil/signer/slashing-protection.sqlite", place.db],
    ["http://127.0.0.1:9000", place.url],
    ["http://127.0.0.1:9101", place.url], // the dedicated listener: the test's signer has no `clients`
    ...Object.entries(replace),
  ];
  for (const [from, to] of paths) block = block.split(from).join(to);
  const prelude = 'vigil() { "$VIGIL_NODE" "$VIGIL_CLI" "$@"; }\nvigil-signer-admin() { shift; vigil "$@"; }\n';
  return spawnSync("bash", ["-eu", "-o", "pipefail", "-c", prelude + block], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, VIGIL_NODE: process.execPath, VIGIL_CLI: CLI },
  });
}

/** The guide's inline command that starts with `start` (in backquotes), with `replace` applied. */
function guideInline(start: string, replace: Record<string, string> = {}): string {
  const guide = fs.readFileSync(GUIDE, "utf8");
  const m = new RegExp(`\`(${start.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[^\`]*)\``).exec(guide);
  if (!m) throw new Error(`docs/migrate.md lost its command ${start}…`);
  let command = m[1]!;
  for (const [from, to] of Object.entries(replace)) command = command.split(from).join(to);
  return command;
}

function sh(command: string, cwd: string): string {
  const r = spawnSync("sh", ["-eu", "-c", command], { cwd, encoding: "utf8" });
  expect(r.status, `${command}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  token = readyToken("vigil-test-migrate-guide");
  // Lighthouse's layout: one directory per key, the password (no newline) in a file named after the key.
  const lighthouse = path.join(work, "lighthouse", "mainnet");
  for (const [i, k] of keys.entries()) {
    const keystore = await create(passwordOf(i), k.secret, Buffer.from(k.pubkey.slice(2), "hex"), `m/12381/3600/${i}/0/0`, "", CHEAP_PBKDF2());
    fs.mkdirSync(path.join(lighthouse, "validators", k.pubkey), { recursive: true });
    fs.writeFileSync(path.join(lighthouse, "validators", k.pubkey, "voting-keystore.json"), JSON.stringify(keystore));
    fs.mkdirSync(path.join(lighthouse, "secrets"), { recursive: true, mode: 0o700 });
    if (k !== inYaml) fs.writeFileSync(path.join(lighthouse, "secrets", k.pubkey), passwordOf(i), { mode: 0o600 });
  }
  // What `lighthouse account validator slashing-protection export` writes: one key with history, one without.
  fs.writeFileSync(
    path.join(work, "interchange.json"),
    JSON.stringify({
      metadata: { interchange_format_version: "5", genesis_validators_root: GVR },
      data: [
        {
          pubkey: moved.pubkey,
          signed_blocks: [{ slot: "100", signing_root: `0x${"01".repeat(32)}` }],
          signed_attestations: [{ source_epoch: "10", target_epoch: "11", signing_root: `0x${"02".repeat(32)}` }],
        },
        { pubkey: fresh.pubkey, signed_blocks: [], signed_attestations: [] },
        { pubkey: inYaml.pubkey, signed_blocks: [], signed_attestations: [] },
      ],
    }),
  );
}, 60_000);

afterAll(async () => {
  if (signer) await stopWithSigterm(signer);
  killLeftovers();
  token?.destroy();
});

it("flatten, import, verify, start: the history refuses and allows as it says; remotekeys; the old signer's high watermark", async () => {
  const out = path.join(work, "vigil-import");
  const lighthouse = path.join(work, "lighthouse", "mainnet");
  const flattened = spawnSync(
    "sh",
    [
      "-eu",
      "-c",
      flattenScript("flatten-script", {
        VALIDATORS: path.join(lighthouse, "validators"),
        SECRETS: path.join(lighthouse, "secrets"),
        KEYSTORE: "voting-keystore.json",
        OUT: out,
      }),
    ],
    { encoding: "utf8" },
  );
  expect(flattened.status, flattened.stderr).toBe(0);
  expect(fs.statSync(out).mode & 0o777).toBe(0o700);
  // The key without a password file is named, as the guide says; the operator writes its password by hand.
  expect(flattened.stderr).toContain(`${inYaml.pubkey}: no password file, write it to ${out}/${inYaml.pubkey}.txt`);
  expect(flattened.stderr.trim().split("\n")).toHaveLength(1);
  fs.writeFileSync(path.join(out, `${inYaml.pubkey}.txt`), passwordOf(2), { mode: 0o600 });
  expect(fs.readdirSync(out).sort()).toEqual(keys.flatMap((k) => [`${k.pubkey}.json`, `${k.pubkey}.txt`]).sort());

  const dataDir = path.join(work, "data");
  const config = writeSignerConfig(token, dataDir, path.join(work, "etc", "signer.json"));
  const place: Place = {
    config,
    importDir: out,
    interchange: path.join(work, "interchange.json"),
    db: path.join(dataDir, "slashing-protection.sqlite"),
    url: "http://127.0.0.1:1", // nothing listens yet: the import step must not need the signer
  };
  const imported = guideStep("import", place, work);
  expect(imported.status, imported.stderr).toBe(0);
  expect(imported.stdout).toMatch(/imported 3 key\(s\)/);
  expect(imported.stderr).toMatch(/imported history of 3 validator\(s\)/);

  signer = spawnSigner(config, "ignore");
  place.url = await signer.ready;

  const verified = guideStep("verify", place, work);
  expect(verified.status, verified.stderr).toBe(0);
  for (const k of keys) expect(verified.stdout).toContain(k.pubkey); // keys list, and the watermarks of each
  expect(verified.stdout).toMatch(/"status":"UP"/); // /healthcheck
  expect(verified.stdout).toMatch(/"keys-loaded":3/);
  const movedLine = verified.stdout.split("\n").find((l) => l.includes(moved.pubkey) && /\b100\b/.test(l));
  expect(movedLine, `watermark show names ${moved.pubkey} with slot 100:\n${verified.stdout}`).toBeDefined();

  const url = place.url;
  expect(((await http(`${url}/api/v1/eth2/publicKeys`)).json() as string[]).sort()).toEqual(keys.map((k) => k.pubkey).sort());
  const sign = (pubkey: string, body: object) => http(`${url}/api/v1/eth2/sign/${pubkey}`, { body });
  const reason = async (pubkey: string, body: object) => {
    const r = await sign(pubkey, body);
    expect(r.status).toBe(412);
    return r.json().reason as string;
  };

  expect(await reason(moved.pubkey, blockBody(100))).toBe("DOUBLE_BLOCK_PROPOSAL");
  expect(await reason(moved.pubkey, blockBody(99))).toBe("BLOCK_SLOT_AT_OR_BELOW_WATERMARK");
  expect(await reason(moved.pubkey, attestationBody(10, 11))).toBe("DOUBLE_VOTE");
  expect(await reason(moved.pubkey, attestationBody(9, 12))).toBe("SOURCE_BELOW_WATERMARK"); // older than anything imported
  expect((await sign(moved.pubkey, blockBody(101))).status).toBe(200);
  expect((await sign(moved.pubkey, attestationBody(11, 12))).status).toBe(200);
  expect((await sign(fresh.pubkey, blockBody(5))).status).toBe(200);
  expect((await sign(fresh.pubkey, attestationBody(1, 2))).status).toBe(200);
  expect((await sign(inYaml.pubkey, blockBody(5))).status).toBe(200);

  // Lighthouse's POST /eth/v1/remotekeys body, built from the signer's own list (its std_types.rs shape).
  const remotekeys = guideStep("lighthouse-remotekeys", place, work);
  expect(remotekeys.status, remotekeys.stderr).toBe(0);
  const request = JSON.parse(fs.readFileSync(path.join(work, "remotekeys.json"), "utf8")) as { remote_keys: { pubkey: string; url: string }[] };
  expect(Object.keys(request)).toEqual(["remote_keys"]);
  expect(request.remote_keys.map((r) => r.pubkey).sort()).toEqual(keys.map((k) => k.pubkey).sort());
  for (const r of request.remote_keys) expect(r).toEqual({ pubkey: r.pubkey, url });

  // This signer is now the old one: stopped (step 1), the guide's high-watermark block on its database; should
  // it come back, it refuses from the high watermark on and shows it.
  await stopWithSigterm(signer);
  const watermark = guideStep("old-vigil-high-watermark", place, work, { "EPOCH=12345 SLOT=395040": "EPOCH=30 SLOT=240" });
  expect(watermark.status, watermark.stderr).toBe(0);
  expect(watermark.stdout).toMatch(/240/);
  signer = spawnSigner(config, "ignore");
  const back = await signer.ready;
  const signBack = (pubkey: string, body: object) => http(`${back}/api/v1/eth2/sign/${pubkey}`, { body });
  expect((await http(`${back}/api/v1/eth2/highWatermark`)).json()).toEqual({ epoch: "30", slot: "240" });
  expect((await signBack(fresh.pubkey, blockBody(240))).json().reason).toBe("BLOCK_SLOT_AT_OR_ABOVE_HIGH_WATERMARK");
  expect((await signBack(fresh.pubkey, attestationBody(29, 30))).json().reason).toBe("ATTESTATION_EPOCH_AT_OR_ABOVE_HIGH_WATERMARK");
  expect((await signBack(fresh.pubkey, blockBody(239))).status).toBe(200);
  expect((await signBack(fresh.pubkey, attestationBody(28, 29))).status).toBe(200);
});

it("Web3Signer's key config files: the guide's script copies each file-keystore's keystore and password, skips other types", () => {
  const keyStorePath = path.join(work, "web3signer", "keys");
  const files = path.join(work, "web3signer", "files");
  fs.mkdirSync(keyStorePath, { recursive: true });
  fs.mkdirSync(files, { recursive: true });
  const written: Record<string, { keystore: string; password: string }> = {};
  // As Web3Signer's keymanager writes them (KeystoreFileManager: quoted values, BLS key type) and as an operator
  // writes them by hand (unquoted), plus a raw key that has no keystore to move.
  const configs: [string, (k: string, p: string) => string][] = [
    ["0xaaaa", (k, p) => `---\ntype: "file-keystore"\nkeyType: "BLS"\nkeystoreFile: "${k}"\nkeystorePasswordFile: "${p}"\n`],
    ["validator-two", (k, p) => `type: file-keystore\nkeyType: BLS\nkeystoreFile: ${k}\nkeystorePasswordFile: ${p}\n`],
  ];
  for (const [name, yaml] of configs) {
    const keystore = path.join(files, `${name}-keystore.json`);
    const password = path.join(files, `${name}-password`);
    written[name] = { keystore: `{"name":"${name}"}`, password: `secret of ${name}` };
    fs.writeFileSync(keystore, written[name].keystore);
    fs.writeFileSync(password, written[name].password);
    fs.writeFileSync(path.join(keyStorePath, `${name}.yaml`), yaml(keystore, password));
  }
  fs.writeFileSync(path.join(keyStorePath, "raw.yaml"), `type: "file-raw"\nkeyType: "BLS"\nprivateKey: "0x${"01".repeat(32)}"\n`);

  const out = path.join(work, "web3signer-import");
  const flattened = spawnSync("sh", ["-eu", "-c", flattenScript("web3signer-flatten-script", { KEY_CONFIGS: keyStorePath, OUT: out })], { encoding: "utf8" });
  expect(flattened.status, flattened.stderr).toBe(0);
  expect(fs.statSync(out).mode & 0o777).toBe(0o700);
  expect(fs.readdirSync(out).sort()).toEqual(["0xaaaa.json", "0xaaaa.txt", "validator-two.json", "validator-two.txt"]);
  for (const [name, w] of Object.entries(written)) {
    expect(fs.readFileSync(path.join(out, `${name}.json`), "utf8")).toBe(w.keystore);
    expect(fs.readFileSync(path.join(out, `${name}.txt`), "utf8")).toBe(w.password);
  }
});

it("the guide's clients config: Lighthouse and Teku by their certificates (PEM, and the PKCS#12 the guide makes), the others by their listeners", async () => {
  if (signer) await stopWithSigterm(signer); // the first test's signer holds the keys' token
  signer = undefined;
  const tls = path.join(work, "tls");
  fs.mkdirSync(tls, { recursive: true });
  const selfSigned = (name: string, san: string) =>
    sh(
      `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=${name} -addext subjectAltName=${san} -keyout ${name}.key -out ${name}.pem 2>/dev/null`,
      tls,
    );
  selfSigned("vigil", "DNS:vigil.internal");
  selfSigned("lighthouse-client", "DNS:lighthouse");
  selfSigned("teku", "DNS:teku");
  // The guide's fingerprint and PKCS#12 commands, as written, on these files.
  const fingerprint = (pem: string) => /=([0-9A-F:]+)/.exec(sh(guideInline("openssl x509 -noout -fingerprint", { "client.pem": pem }), tls))![1]!;
  fs.writeFileSync(path.join(tls, "teku.pass"), "teku keystore password", { mode: 0o600 });
  sh(guideInline("openssl pkcs12 -export"), tls);

  const ports = { main: await freePort(), 9101: await freePort(), 9102: await freePort(), 9103: await freePort(), 9104: await freePort() };
  const fragment = guideBlock("vigil-config: clients")
    .split("/etc/vigil/tls/vigil.pem")
    .join(path.join(tls, "vigil.pem"))
    .split("/etc/vigil/tls/vigil.key")
    .join(path.join(tls, "vigil.key"))
    .split("AB:CD:…")
    .join(fingerprint("lighthouse-client.pem"))
    .split("12:34:…")
    .join(fingerprint("teku.pem"))
    .split('"0.0.0.0"')
    .join('"127.0.0.1"')
    .replace(/"port": (9000|910[1-4])\b/g, (_, p: string) => `"port": ${p === "9000" ? ports.main : ports[p as unknown as keyof typeof ports]}`);
  const extra = JSON.parse(`{${fragment}}`) as Record<string, unknown>;
  const config = writeSignerConfig(token, path.join(work, "data-clients"), path.join(work, "etc", "signer-clients.json"), extra);
  signer = spawnSigner(config, "ignore");
  await signer.ready;

  // By the name the validator clients use (the allowlisted Host), over TLS, Vigil's certificate trusted.
  const curl = (args: string) =>
    spawnSync("sh", ["-c", `curl -s -o body -w '%{http_code}' --cacert vigil.pem --resolve vigil.internal:${ports.main}:127.0.0.1 ${args}`], {
      cwd: tls,
      encoding: "utf8",
    });
  const publicKeys = `https://vigil.internal:${ports.main}/api/v1/eth2/publicKeys`;
  const all = keys.map((k) => k.pubkey).sort();
  const answer = () => JSON.parse(fs.readFileSync(path.join(tls, "body"), "utf8"));
  expect(curl(`--cert lighthouse-client.pem --key lighthouse-client.key ${publicKeys}`).stdout).toBe("200");
  expect((answer() as string[]).sort()).toEqual(all);
  expect(curl(`--cert-type P12 --cert "teku.p12:$(cat teku.pass)" ${publicKeys}`).stdout).toBe("200");
  expect((answer() as string[]).sort()).toEqual(all);
  expect(curl(publicKeys).stdout).toBe("401"); // no certificate: nobody
  expect(curl(`--cert lighthouse-client.pem --key lighthouse-client.key -H "Host: elsewhere.example:${ports.main}" ${publicKeys}`).stdout).toBe("403"); // a Host not allowed
  for (const port of [ports[9101], ports[9102], ports[9103], ports[9104]]) {
    const r = await http(`http://127.0.0.1:${port}/api/v1/eth2/publicKeys`);
    expect(r.status).toBe(200);
    expect((r.json() as string[]).sort()).toEqual(all);
  }
});
