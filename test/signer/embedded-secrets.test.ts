// Secrets of a running signer: the first run (`npm start`) creates its token without any child process seeing
// a PIN, and the signer runs with core dumps off however it is started (a core dump holds every decrypted key).
// The signer is started for real: cli/start-embedded.sh (what `npm start` runs) and `node bin/vigil.js`.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { coreDumpLimit } from "../../common/index.js";
import { tempDir } from "../helpers/tmp.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const work = tempDir("vigil-embedded-secrets-");
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

// A stand-in softhsm2-util first on PATH: it records its arguments (which held both PINs) and fails.
const trapDir = path.join(work, "trap");
const trapLog = path.join(work, "softhsm2-util.calls");
fs.mkdirSync(trapDir);
fs.writeFileSync(path.join(trapDir, "softhsm2-util"), `#!/bin/sh\necho "$@" >> "${trapLog}"\nexit 1\n`, { mode: 0o755 });
const trapPath = `${trapDir}:${process.env.PATH}`;

// Start with core dumps ON (soft limit raised to the hard one), so the signer has to turn them off itself.
const limits = fs.existsSync("/proc/self/limits") ? fs.readFileSync("/proc/self/limits", "utf8") : "";
const hardLimit = /^Max core file size\s+\S+\s+(\S+)/m.exec(limits)?.[1];
const cannotEnable =
  hardLimit === undefined
    ? "no /proc/self/limits (not Linux)"
    : hardLimit === "0"
      ? "the hard core-file-size limit here is 0, so core dumps cannot be switched on for the check"
      : undefined;
if (cannotEnable) console.warn(`SKIPPING core-dump checks: ${cannotEnable}`);
const withCoreDumpsOn = (argv: string[]) => ["/bin/sh", ["-c", 'ulimit -S -c "$(ulimit -H -c)" && exec "$@"', "sh", ...argv]] as const;

function startSigner(argv: string[], env: NodeJS.ProcessEnv) {
  const [cmd, args] = withCoreDumpsOn(argv);
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let err = "";
  child.stdout!.resume();
  const ready = new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /ready: \d+ key\(s\) on (\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, ready, exited, stderr: () => err };
}

/** The running process's command line, to be sure the limits read are the signer's. */
const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");

describe("first run (npm start): token creation", () => {
  it("creates the token with no child process at all (softhsm2-util never runs); the PIN files open it", async () => {
    const dataDir = path.join(work, "first-run");
    const run = startSigner(["bash", "cli/start-embedded.sh", "--data-dir", dataDir, "--network", "minimal-devnet", "--keys", "2", "--port", "0"], {
      PATH: trapPath,
    });
    const url = await run.ready;
    expect(run.stderr()).toContain('created SoftHSM2 token "vigil-embedded"');
    expect(fs.existsSync(trapLog)).toBe(false);
    const served = (await (await fetch(`${url}/api/v1/eth2/publicKeys`)).json()) as string[];
    expect(served).toHaveLength(2);
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);

    // The token opens with the user PIN the first run wrote to user.pin.
    const softhsmConf = { ...process.env, SOFTHSM2_CONF: path.join(dataDir, "softhsm/softhsm2.conf") };
    const module = (JSON.parse(fs.readFileSync(path.join(dataDir, "signer.json"), "utf8")) as { hsm: { module: string } }).hsm.module;
    const hsmFlags = ["--module", module, "--token-label", "vigil-embedded", "--pin-file", path.join(dataDir, "softhsm/user.pin")];
    const list = spawnSync(process.execPath, ["bin/vigil.js", "keys", "list", "--json", ...hsmFlags], { cwd: ROOT, encoding: "utf8", env: softhsmConf });
    expect(list.status, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as string[]).sort()).toEqual([...served].sort());
    // The SO PIN in so.pin is the token's: log in as security officer (PIN read from the file, in-process).
    const soCheck = `
      import fs from "node:fs";
      import { acquireModule, findSlot, P } from "./dist/signer/keystore/pkcs11-session.js";
      const pkcs11 = acquireModule(process.argv[1], () => new P.PKCS11());
      const s = pkcs11.C_OpenSession(findSlot(pkcs11, "vigil-embedded"), P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
      pkcs11.C_Login(s, P.CKU_SO, fs.readFileSync(process.argv[2], "utf8").trim());
      console.log("so login ok");`;
    const so = spawnSync(process.execPath, ["--input-type=module", "-e", soCheck, module, path.join(dataDir, "softhsm/so.pin")], {
      cwd: ROOT,
      encoding: "utf8",
      env: softhsmConf,
    });
    expect(so.stdout.trim(), so.stderr).toBe("so login ok");
  }, 90_000);
});

describe.skipIf(cannotEnable !== undefined)("core dumps are off in the running signer", () => {
  it("the check can fail: a process started the same way has core dumps on", () => {
    const [cmd, args] = withCoreDumpsOn(["cat", "/proc/self/limits"]);
    const out = spawnSync(cmd, args, { encoding: "utf8" }).stdout;
    expect(/^Max core file size\s+(\S+)/m.exec(out)?.[1]).not.toBe("0");
  });

  it.each([
    ["npm start's script (cli/start-embedded.sh)", ["bash", "cli/start-embedded.sh"]],
    ["node bin/vigil.js signer start", [process.execPath, "bin/vigil.js", "signer", "start"]],
  ])(
    "%s",
    async (name, launcher) => {
      const dataDir = path.join(work, `core-${launcher.length}`);
      const run = startSigner([...launcher, "--embedded", "--data-dir", dataDir, "--network", "minimal-devnet", "--keys", "1", "--port", "0"], {});
      await run.ready;
      const pid = run.child.pid!;
      expect(cmdline(pid)).toMatch(/bin\/vigil\.js signer start --embedded/); // the signer itself, not a wrapper
      expect(coreDumpLimit(pid), name).toBe("0");
      expect(fs.readFileSync(`/proc/${pid}/limits`, "utf8")).toMatch(/^Max core file size\s+0\s/m);
      run.child.kill("SIGTERM");
      expect(await run.exited).toBe(0);
    },
    90_000,
  );

  it("refuses to start when it cannot turn core dumps off (fail closed), before touching any key", () => {
    const dataDir = path.join(work, "no-prlimit");
    const [cmd, args] = withCoreDumpsOn([process.execPath, "bin/vigil.js", "signer", "start", "--embedded", "--data-dir", dataDir, "--port", "0"]);
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, PATH: trapDir } }); // no prlimit on PATH
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vigil: core dumps are enabled .*\[CORE_DUMPS_ENABLED\]\n$/);
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
