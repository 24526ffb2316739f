// Public networks built in from @lodestar/config, and custom networks from a config.yaml: the real signer (HTTP on
// loopback, SoftHSM2 token, SQLite file) signs at each fork of hoodi and sepolia, checked against signing roots
// computed here by hand from the spec, with fork versions typed from each network's published config.yaml.
// This file's process runs the mainnet preset (hoodi, sepolia and the custom network below all use it).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import bls from "@chainsafe/bls";
import { ssz } from "@lodestar/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hexToBytes } from "../../common/index.js";
import { loadSignerConfig, parseSignerConfig, SignerConfigError } from "../../signer/index.js";
import { CLI, killLeftovers, spawnSigner, stopWithSigterm, writeSignerConfig } from "../helpers/signer-process.js";
import type { TestToken } from "../helpers/softhsm.js";
import { tempDir } from "../helpers/tmp.js";
import { domainByHand, signingRootByHand, uint64RootByHand } from "../signing/fork-matrix.js";
import { http, interopPubkey, start, testConfig, tokenWithInteropKeys } from "./harness.js";

const work = tempDir("vigil-signer-networks-");
const HSM = { module: "/x.so", tokenLabel: "t", pin: { env: "P" } };
const FORKS = ["PHASE0", "ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU"] as const;
type Fork = (typeof FORKS)[number];
interface Expected {
  name: string;
  gvr: string;
  /** Version and activation epoch per fork, from github.com/eth-clients/<network>/metadata/config.yaml. */
  forks: Record<Fork, [version: string, epoch: number]>;
}

const HOODI: Expected = {
  name: "hoodi",
  gvr: "0x212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
  forks: {
    PHASE0: ["0x10000910", 0],
    ALTAIR: ["0x20000910", 0],
    BELLATRIX: ["0x30000910", 0],
    CAPELLA: ["0x40000910", 0],
    DENEB: ["0x50000910", 0],
    ELECTRA: ["0x60000910", 2048],
    FULU: ["0x70000910", 50688],
  },
};
const SEPOLIA: Expected = {
  name: "sepolia",
  gvr: "0xd8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078",
  forks: {
    PHASE0: ["0x90000069", 0],
    ALTAIR: ["0x90000070", 50],
    BELLATRIX: ["0x90000071", 100],
    CAPELLA: ["0x90000072", 56832],
    DENEB: ["0x90000073", 132608],
    ELECTRA: ["0x90000074", 222464],
    FULU: ["0x90000075", 272640],
  },
};

const D = { PROPOSER: [0, 0, 0, 0], ATTESTER: [1, 0, 0, 0], RANDAO: [2, 0, 0, 0], EXIT: [4, 0, 0, 0], SYNC: [7, 0, 0, 0] } as const;
const SLOTS = 32n;
const root = (byte: number) => `0x${byte.toString(16).padStart(2, "0").repeat(32)}`;

interface Case {
  label: string;
  key: number;
  body: Record<string, unknown>;
  signingRoot: string;
}

/**
 * For each fork: fork_info as a beacon node sends it at that fork, and messages whose domain uses the fork's version
 * (and, where the fork starts after genesis, one from the epoch before, which uses the previous version). One key per
 * fork, so the slashing rules never meet across forks.
 */
function casesFor(net: Expected): Case[] {
  const gvr = hexToBytes(net.gvr);
  const cases: Case[] = [];
  FORKS.forEach((fork, k) => {
    const [current, forkEpoch] = net.forks[fork];
    const [previous] = net.forks[FORKS[Math.max(0, k - 1)]!];
    const fork_info = { fork: { previous_version: previous, current_version: current, epoch: String(forkEpoch) }, genesis_validators_root: net.gvr };
    const epoch = BigInt(forkEpoch) + 2n;
    const push = (type: string, body: Record<string, unknown>, objectRoot: Uint8Array, domainType: readonly number[], version: string) =>
      cases.push({
        label: `${net.name} ${fork} ${type}`,
        key: k,
        body: { type, fork_info, ...body },
        signingRoot: signingRootByHand(objectRoot, domainByHand(domainType, version, gvr)),
      });

    const data = {
      slot: String(epoch * SLOTS),
      index: "0",
      beacon_block_root: root(0x11),
      source: { epoch: String(epoch - 1n), root: root(0x22) },
      target: { epoch: String(epoch), root: root(0x33) },
    };
    push("ATTESTATION", { attestation: data }, ssz.phase0.AttestationData.hashTreeRoot(ssz.phase0.AttestationData.fromJson(data)), D.ATTESTER, current);
    push("RANDAO_REVEAL", { randao_reveal: { epoch: String(epoch) } }, uint64RootByHand(epoch), D.RANDAO, current);
    if (forkEpoch > 0) {
      const before = BigInt(forkEpoch) - 1n;
      push("RANDAO_REVEAL", { randao_reveal: { epoch: String(before) } }, uint64RootByHand(before), D.RANDAO, previous);
    }
    // EIP-7044: from Deneb on, exits are signed with the Capella version whatever the epoch.
    const exit = { epoch: String(epoch), validator_index: "5" };
    const exitVersion = FORKS.indexOf(fork) >= FORKS.indexOf("DENEB") ? net.forks.CAPELLA[0] : current;
    push("VOLUNTARY_EXIT", { voluntary_exit: exit }, ssz.phase0.VoluntaryExit.hashTreeRoot(ssz.phase0.VoluntaryExit.fromJson(exit)), D.EXIT, exitVersion);
    if (k >= FORKS.indexOf("ALTAIR")) {
      const message = { beacon_block_root: root(0x44), slot: String(epoch * SLOTS + 1n) };
      push("SYNC_COMMITTEE_MESSAGE", { sync_committee_message: message }, hexToBytes(message.beacon_block_root), D.SYNC, current);
    }
    if (k >= FORKS.indexOf("BELLATRIX")) {
      const header = { slot: String(epoch * SLOTS + 2n), proposer_index: "5", parent_root: root(0x55), state_root: root(0x66), body_root: root(0x77) };
      const headerRoot = ssz.phase0.BeaconBlockHeader.hashTreeRoot(ssz.phase0.BeaconBlockHeader.fromJson(header));
      push("BLOCK_V2", { beacon_block: { version: fork, block_header: header } }, headerRoot, D.PROPOSER, current);
    }
  });
  // Builder registrations carry no fork_info: the network's genesis fork version and a zero root.
  const registration = { fee_recipient: `0x${"ee".repeat(20)}`, gas_limit: "36000000", timestamp: "1750000000", pubkey: interopPubkey(0) };
  const registrationRoot = ssz.bellatrix.ValidatorRegistrationV1.hashTreeRoot(ssz.bellatrix.ValidatorRegistrationV1.fromJson(registration));
  cases.push({
    label: `${net.name} VALIDATOR_REGISTRATION`,
    key: 0,
    body: { type: "VALIDATOR_REGISTRATION", validator_registration: registration },
    signingRoot: signingRootByHand(registrationRoot, domainByHand([0, 0, 0, 1], net.forks.PHASE0[0], new Uint8Array(32))),
  });
  return cases;
}

let token: TestToken;
beforeAll(async () => {
  token = await tokenWithInteropKeys("vigil-test-signer-networks", FORKS.length);
}, 120_000);
afterAll(() => {
  killLeftovers();
  token?.destroy();
});

describe.each([HOODI, SEPOLIA])("network $name, built in from @lodestar/config", (net) => {
  it("pins the network's genesis_validators_root and signs at every fork with the spec's signing root", async () => {
    const config = testConfig(token, path.join(work, net.name), { network: net.name, logLevel: "warn", defaultClient: { allowedTypes: "*" } });
    expect(config.genesisValidatorsRoot).toBe(net.gvr);
    expect(config.network.preset).toBe("mainnet");
    const { signer } = await start(config);
    try {
      const cases = casesFor(net);
      expect(cases.length).toBeGreaterThan(30);
      for (const c of cases) {
        const res = await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(c.key)}`, { body: c.body, headers: { accept: "application/json" } });
        expect(res.status, `${c.label}: ${res.text}`).toBe(200);
        const ok = bls.verify(hexToBytes(interopPubkey(c.key)), hexToBytes(c.signingRoot), hexToBytes(res.json().signature));
        expect(ok, `${c.label}: signature over the expected signing root`).toBe(true);
      }
      // Another network's root (mainnet's) is refused: the database is pinned from the start.
      const other = casesFor({ ...net, gvr: "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95" })[0]!;
      expect((await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: other.body })).status).toBe(412);
    } finally {
      await signer.close();
    }
  }, 60_000);
});

describe("network gnosis: its own preset, in a signer process of its own", () => {
  it("signs with 16 slots per epoch and gnosis's Electra domain", async () => {
    const gvr = "0xf5dcb5564e829aab27264b9becd5dfaa017085611224cb3036f573368dbb9d47";
    const file = writeSignerConfig(token, path.join(work, "gnosis"), path.join(work, "gnosis.json"), {
      network: "gnosis",
      genesisValidatorsRoot: gvr,
      logLevel: "warn",
    });
    const signer = spawnSigner(file, "ignore");
    const url = await signer.ready;
    try {
      // Gnosis: Deneb 0x04000064, Electra 0x05000064 from epoch 1337856 (github.com/gnosischain/configs).
      const fork_info = { fork: { previous_version: "0x04000064", current_version: "0x05000064", epoch: "1337856" }, genesis_validators_root: gvr };
      const sign = (body: Record<string, unknown>) => http(`${url}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: { fork_info, ...body } });
      const verify = (signature: string, objectRoot: Uint8Array, domainType: readonly number[], version: string) =>
        bls.verify(
          hexToBytes(interopPubkey(0)),
          hexToBytes(signingRootByHand(objectRoot, domainByHand(domainType, version, hexToBytes(gvr)))),
          hexToBytes(signature),
        );
      // Slot 1337856 * 16 + 1 is in epoch 1337856 (Electra) with 16 slots per epoch; with 32 it would be epoch 668928,
      // before the fork, and signed with Deneb's version.
      const message = { beacon_block_root: root(0x44), slot: String(1337856 * 16 + 1) };
      const sync = await sign({ type: "SYNC_COMMITTEE_MESSAGE", sync_committee_message: message });
      expect(sync.status, sync.text).toBe(200);
      expect(verify(sync.json().signature, hexToBytes(message.beacon_block_root), D.SYNC, "0x05000064")).toBe(true);
      const data = {
        slot: String(1337857 * 16),
        index: "0",
        beacon_block_root: root(0x11),
        source: { epoch: "1337856", root: root(0x22) },
        target: { epoch: "1337857", root: root(0x33) },
      };
      const attestation = await sign({ type: "ATTESTATION", attestation: data });
      expect(attestation.status, attestation.text).toBe(200);
      const dataRoot = ssz.phase0.AttestationData.hashTreeRoot(ssz.phase0.AttestationData.fromJson(data));
      expect(verify(attestation.json().signature, dataRoot, D.ATTESTER, "0x05000064")).toBe(true);
    } finally {
      expect((await stopWithSigterm(signer)).code).toBe(0);
    }
  }, 60_000);
});

describe("vigil signer start --embedded --network", () => {
  it("hoodi: the embedded config names it and the signer signs hoodi messages", async () => {
    const dataDir = path.join(work, "embedded-hoodi");
    const child = spawn(process.execPath, [CLI, "signer", "start", "--embedded", "--data-dir", dataDir, "--network", "hoodi", "--keys", "1", "--port", "0"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    let err = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        const m = /ready: \d+ key\(s\) on (\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${err}`)));
    });
    try {
      expect(JSON.parse(fs.readFileSync(path.join(dataDir, "signer.json"), "utf8")).network).toBe("hoodi");
      const [pubkey] = (await http(`${url}/api/v1/eth2/publicKeys`)).json() as string[];
      const c = casesFor(HOODI).find((x) => x.label === "hoodi ELECTRA ATTESTATION")!;
      const res = await http(`${url}/api/v1/eth2/sign/${pubkey}`, { body: c.body });
      expect(res.status, res.text).toBe(200);
      expect(bls.verify(hexToBytes(pubkey!), hexToBytes(c.signingRoot), hexToBytes(res.json().signature))).toBe(true);
    } finally {
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  }, 60_000);

  it("a network that cannot be read is refused (exit 3) before anything is created", () => {
    const dataDir = path.join(work, "embedded-bad");
    for (const [network, reason] of [
      ["./absent/config.yaml", /cannot read .*absent\/config\.yaml: ENOENT/],
      ["holesky", /holesky is not built in/],
      ["goerli", /"goerli" is not a known network/],
    ] as const) {
      const run = spawnSync(process.execPath, [CLI, "signer", "start", "--embedded", "--data-dir", dataDir, "--network", network, "--port", "0"], {
        encoding: "utf8",
      });
      expect(run.status, run.stderr).toBe(3);
      expect(run.stderr).toMatch(reason);
      expect(fs.existsSync(path.join(dataDir, "softhsm")), network).toBe(false);
    }
  });
});

describe("network settings", () => {
  it("every public network resolves with its preset, slot time and root; holesky is refused with the reason", () => {
    const expected = {
      mainnet: ["mainnet", 12, "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"],
      hoodi: ["mainnet", 12, HOODI.gvr],
      sepolia: ["mainnet", 12, SEPOLIA.gvr],
      gnosis: ["gnosis", 5, "0xf5dcb5564e829aab27264b9becd5dfaa017085611224cb3036f573368dbb9d47"],
      chiado: ["gnosis", 5, "0x9d642dac73058fbf39c0ae41ab1e34e4d889043cb199851ded7095bc99eb4c1e"],
    } as const;
    for (const [name, [preset, seconds, gvr]] of Object.entries(expected)) {
      const config = parseSignerConfig({ network: name, hsm: HSM });
      expect(config.network, name).toMatchObject({ name, preset, secondsPerSlot: seconds, genesisValidatorsRoot: gvr });
      expect(config.genesisValidatorsRoot, name).toBe(gvr);
    }
    // Gnosis has not scheduled Fulu in this @lodestar/config: its version is not offered for signing.
    expect(parseSignerConfig({ network: "gnosis", hsm: HSM }).network.forkVersions.FULU).toBeUndefined();
    expect(() => parseSignerConfig({ network: "holesky", hsm: HSM })).toThrow(/holesky .*shut down.*@lodestar\/config 1\.38\.0/);
    expect(() => parseSignerConfig({ network: "holeksy", hsm: HSM })).toThrow(/"holeksy" is not a known network \("mainnet", "hoodi"/);
  });

  it("a configured genesisValidatorsRoot that is not the network's is refused (exit 3), naming both", () => {
    const wrong = `0x${"ab".repeat(32)}`;
    let error: unknown;
    try {
      parseSignerConfig({ network: "hoodi", genesisValidatorsRoot: wrong, hsm: HSM });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SignerConfigError);
    expect((error as SignerConfigError).exitCode).toBe(3);
    expect((error as Error).message).toContain(wrong);
    expect((error as Error).message).toContain(HOODI.gvr);
    // The same root, given again, is fine.
    expect(parseSignerConfig({ network: "hoodi", genesisValidatorsRoot: HOODI.gvr, hsm: HSM }).genesisValidatorsRoot).toBe(HOODI.gvr);
  });

  it("the CLI refuses the wrong root with exit 3 and one line naming both roots", () => {
    const file = path.join(work, "wrong-root.json");
    fs.writeFileSync(file, JSON.stringify({ network: "sepolia", genesisValidatorsRoot: HOODI.gvr, hsm: HSM }));
    const run = spawnSync(process.execPath, ["bin/vigil.js", "signer", "check-config", "--config", file], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(3);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toContain(HOODI.gvr);
    expect(run.stderr).toContain(SEPOLIA.gvr);
  });
});

describe("a custom network from a consensus-spec config.yaml", () => {
  const VERSIONS = { GENESIS: "0x10203040", ALTAIR: "0x11203040", BELLATRIX: "0x12203040", CAPELLA: "0x13203040", DENEB: "0x14203040", ELECTRA: "0x15203040" };
  const yaml = (presetBase: string) =>
    [
      "# as a devnet publishes it (extract)",
      `PRESET_BASE: '${presetBase}'`,
      "CONFIG_NAME: 'vigil-devnet'",
      "MIN_GENESIS_TIME: 1700000000",
      "GENESIS_DELAY: 300",
      `GENESIS_FORK_VERSION: ${VERSIONS.GENESIS}`,
      ...(["ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA"] as const).flatMap((f) => [`${f}_FORK_VERSION: ${VERSIONS[f]}`, `${f}_FORK_EPOCH: 0`]),
      "FULU_FORK_VERSION: 0x16203040",
      "FULU_FORK_EPOCH: 18446744073709551615",
      "SECONDS_PER_SLOT: 6",
      "DEPOSIT_CHAIN_ID: 1337",
      "",
    ].join("\n");

  it("is read relative to the config file, preset from PRESET_BASE, unscheduled forks left out, and signs", async () => {
    const dir = path.join(work, "custom");
    fs.mkdirSync(path.join(dir, "net"), { recursive: true });
    fs.writeFileSync(path.join(dir, "net", "config.yaml"), yaml("mainnet"));
    const file = path.join(dir, "signer.json");
    const gvr = root(0x5a);
    const base = testConfig(token, path.join(dir, "data"));
    fs.writeFileSync(
      file,
      JSON.stringify({
        network: "./net/config.yaml",
        genesisValidatorsRoot: gvr,
        dataDir: "data",
        hsm: { ...base.hsm },
        listen: { host: "127.0.0.1", port: 0 },
        logLevel: "warn",
        defaultClient: { allowedTypes: "*" },
      }),
    );
    const config = loadSignerConfig(file);
    expect(config.network).toMatchObject({
      name: "vigil-devnet",
      preset: "mainnet",
      genesisForkVersion: VERSIONS.GENESIS,
      forkVersions: { ALTAIR: VERSIONS.ALTAIR, CAPELLA: VERSIONS.CAPELLA, ELECTRA: VERSIONS.ELECTRA },
      genesisTime: 1700000300,
      secondsPerSlot: 6,
    });
    expect(config.network.forkVersions.FULU).toBeUndefined();
    expect(config.network.genesisValidatorsRoot).toBeUndefined();

    const { signer } = await start(config);
    try {
      const fork_info = { fork: { previous_version: VERSIONS.DENEB, current_version: VERSIONS.ELECTRA, epoch: "0" }, genesis_validators_root: gvr };
      const exit = { epoch: "3", validator_index: "1" };
      const res = await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(0)}`, { body: { type: "VOLUNTARY_EXIT", fork_info, voluntary_exit: exit } });
      expect(res.status, res.text).toBe(200);
      const expectedRoot = signingRootByHand(
        ssz.phase0.VoluntaryExit.hashTreeRoot(ssz.phase0.VoluntaryExit.fromJson(exit)),
        domainByHand(D.EXIT, VERSIONS.CAPELLA, hexToBytes(gvr)),
      );
      expect(bls.verify(hexToBytes(interopPubkey(0)), hexToBytes(expectedRoot), hexToBytes(res.json().signature))).toBe(true);
      // Fulu is not scheduled on this network: an exit naming its version cannot be placed under EIP-7044.
      const fulu = { ...fork_info, fork: { previous_version: VERSIONS.ELECTRA, current_version: "0x16203040", epoch: "0" } };
      const refused = await http(`${signer.url}/api/v1/eth2/sign/${interopPubkey(0)}`, {
        body: { type: "VOLUNTARY_EXIT", fork_info: fulu, voluntary_exit: exit },
      });
      expect(refused.status).toBe(400);
      expect(refused.text).toContain("UNKNOWN_FORK_VERSION");
    } finally {
      await signer.close();
    }
  }, 60_000);

  it("takes the gnosis preset from PRESET_BASE; refuses an unknown preset, a missing file and a non-mapping", () => {
    const dir = path.join(work, "yaml-checks");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "gnosis-like.yaml"), yaml("gnosis"));
    expect(parseSignerConfig({ network: "gnosis-like.yaml", hsm: HSM }, dir).network.preset).toBe("gnosis");
    fs.writeFileSync(path.join(dir, "odd.yaml"), yaml("mainnet-ish"));
    expect(() => parseSignerConfig({ network: "./odd.yaml", hsm: HSM }, dir)).toThrow(/PRESET_BASE "mainnet-ish" is not a preset Vigil signs for/);
    expect(() => parseSignerConfig({ network: "./absent.yaml", hsm: HSM }, dir)).toThrow(/cannot read .*absent\.yaml: ENOENT/);
    fs.writeFileSync(path.join(dir, "list.yaml"), "- 1\n- 2\n");
    expect(() => parseSignerConfig({ network: "./list.yaml", hsm: HSM }, dir)).toThrow(/list\.yaml: is not a YAML mapping/);
  });
});
