// `vigil keys …` on the config a running signer uses — the embedded one (data/signer.json: its own softhsmConf,
// a PIN file relative to it), run from another directory — reaching that signer: a key generated or imported
// goes live through POST /reload; SIGHUP reloads too and the signer keeps running; the password prompt on a
// terminal (through a real pty: script(1)).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.js";
import { tempDir } from "../helpers/tmp.js";
import { http, randaoBody } from "../signer/harness.js";
import { randomKey, writeKeystores } from "./fixtures.js";

const VIGIL = path.resolve(__dirname, "../../bin/vigil.js");
const work = tempDir("vigil-cli-live-keys-");
const dataDir = path.join(work, "data");
const configFile = path.join(dataDir, "signer.json");
let signer: ChildProcess;
let url: string;
let stderr = "";

/** The keys CLI from / (not the config's directory), with SOFTHSM2_CONF pointing at another SoftHSM2 setup. */
function vigil(args: string[], opts: { input?: string } = {}) {
  const r = spawnSync("node", [VIGIL, ...args], { encoding: "utf8", cwd: os.tmpdir(), env: { ...process.env }, ...(opts.input ? { input: opts.input } : {}) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function reloaded(): Promise<void> {
  for (;;) {
    const s = (await http(`${url}/reload`)).json().status;
    if (s !== "running" && s !== "idle") return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const signStatus = async (pubkey: string) => (await http(`${url}/api/v1/eth2/sign/${pubkey}`, { body: randaoBody(1) })).status;

beforeAll(async () => {
  const port = await freePort();
  signer = spawn(
    "node",
    [VIGIL, "signer", "start", "--embedded", "--data-dir", dataDir, "--network", "minimal-devnet", "--keys", "2", "--port", String(port)],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env },
    },
  );
  url = await new Promise<string>((resolve, reject) => {
    signer.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /ready: \d+ key\(s\) on (\S+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    signer.once("exit", (code) => reject(new Error(`signer exited ${code}: ${stderr}`)));
  });
}, 120_000);

afterAll(async () => {
  if (signer && signer.exitCode === null) {
    const exited = new Promise((r) => signer.once("exit", r));
    signer.kill("SIGTERM");
    await exited;
  }
});

describe("keys CLI on the embedded config of a running signer", () => {
  it("list: honours softhsmConf and the PIN file relative to the config", () => {
    const r = vigil(["keys", "list", "--config", configFile, "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(2);
    expect(vigil(["keys", "verify", "--config", configFile]).stdout).toMatch(/^2 key\(s\) verified/);
  });

  it("generate: the running signer reloads and the new key signs", async () => {
    const r = vigil(["keys", "generate", "--count", "1", "--config", configFile]);
    expect(r.code).toBe(0);
    const pubkey = r.stdout.trim();
    expect(r.stderr).toMatch(/the signer at http:\/\/127\.0\.0\.1:\d+ is reloading its keys/);
    await reloaded();
    expect((await http(`${url}/reload`)).json().status).toBe("completed");
    expect(await signStatus(pubkey)).toBe(200);
  }, 60_000);

  it("import without a password file asks on the terminal (no echo), then the key goes live", async () => {
    const key = randomKey();
    const dir = path.join(work, "keystores");
    await writeKeystores(dir, [key], { password: "typed at the prompt" });
    // script(1) gives the CLI a real terminal; the password is typed into it, never passed on argv.
    const cmd = `node ${VIGIL} keys import --keystores ${dir} --config ${configFile}`;
    const child = spawn("script", ["-qec", cmd, "/dev/null"], { cwd: os.tmpdir(), stdio: ["pipe", "pipe", "pipe"], env: { ...process.env } });
    let out = "";
    let typed = false;
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      // Typed once the prompt is shown (the terminal is then in no-echo mode), as a person would.
      if (!typed && /password for the 1 keystore\(s\)[^\n]*: $/.test(out)) {
        typed = true;
        child.stdin!.write("typed at the prompt\r");
      }
    });
    const status = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const r = { stdout: out, status };
    expect(r.stdout).toMatch(/password for the 1 keystore\(s\)/);
    expect(r.stdout).not.toMatch(/typed at the prompt/);
    expect(r.stdout).toMatch(/imported 1 key\(s\)/);
    expect(r.status).toBe(0);
    await reloaded();
    expect(await signStatus(key.pubkey)).toBe(200);
  }, 60_000);

  it("without a terminal and without password files: refused, nothing imported", async () => {
    const dir = path.join(work, "keystores-2");
    const key = randomKey();
    await writeKeystores(dir, [key], { password: "x" });
    const r = vigil(["keys", "import", "--keystores", dir, "--config", configFile]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot read password file/);
  });

  it("SIGHUP reloads the keys and the signer keeps running", async () => {
    // A key put on the token by a command that does not know the signer (a keys-only config): live after SIGHUP.
    const keysOnly = path.join(work, "keys-only.json");
    const embedded = JSON.parse(fs.readFileSync(configFile, "utf8"));
    fs.writeFileSync(
      keysOnly,
      JSON.stringify({
        softhsmConf: path.join(dataDir, embedded.softhsmConf),
        hsm: { ...embedded.hsm, pin: { file: path.join(dataDir, embedded.hsm.pin.file) } },
      }),
    );
    const r = vigil(["keys", "generate", "--count", "1", "--config", keysOnly]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/serves the change after a reload: `systemctl reload vigil-signer` \(SIGHUP\)/);
    const pubkey = r.stdout.trim();
    expect(await signStatus(pubkey)).toBe(404);
    const before = (await http(`${url}/reload`)).json().lastOperationTime;
    signer.kill("SIGHUP");
    for (;;) {
      const v = (await http(`${url}/reload`)).json();
      if (v.lastOperationTime !== before && v.status !== "running") break;
      await new Promise((res) => setTimeout(res, 25));
    }
    expect(signer.exitCode).toBeNull();
    expect(await signStatus(pubkey)).toBe(200);
  }, 60_000);

  it("delete is refused while the signer runs (it could sign after the export); once it is stopped, it goes through", async () => {
    const pubkey = (JSON.parse(vigil(["keys", "list", "--config", configFile, "--json"]).stdout) as Array<{ pubkey: string } | string>)
      .map((k) => (typeof k === "string" ? k : k.pubkey))
      .at(0)!;
    const exportFile = path.join(work, "deleted.interchange.json");
    const refused = vigil(["keys", "delete", pubkey, "--yes", "--config", configFile, "--export-file", exportFile]);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/is running \(pid \d+\).*DELETE \/eth\/v1\/keystores/);
    expect(fs.existsSync(exportFile)).toBe(false);
    expect(await signStatus(pubkey)).toBe(200);

    const exited = new Promise((r) => signer.once("exit", r));
    signer.kill("SIGTERM");
    await exited;
    const done = vigil(["keys", "delete", pubkey, "--yes", "--config", configFile, "--export-file", exportFile]);
    expect(done.stderr).not.toMatch(/is running/);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`deleted ${pubkey}`);
    const history = JSON.parse(fs.readFileSync(exportFile, "utf8"));
    expect(history.data.map((d: { pubkey: string }) => d.pubkey)).toEqual([pubkey]);
  }, 60_000);
});
