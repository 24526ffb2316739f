// Test harness for the HTTP signer: a real SoftHSM2 token holding interop keys, a real SQLite file and a real
// fastify listener on a loopback port; pino output captured so tests can read (and grep) the log.
import fs from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { bytesToHex } from "../../common/index.js";
import { initToken, openKeyStore } from "../../signer/keystore/index.js";
import { parseSignerConfig, startSigner, type RunningSigner, type SignerConfig } from "../../signer/index.js";
import { interopSecretKey } from "../signing/interop-keys.js";
import { createToken, type TestToken } from "../helpers/softhsm.js";
import bls from "@chainsafe/bls";

export { REFERENCE_DIR } from "../signing/reference.js";

export function interopPubkey(i: number): string {
  return bytesToHex(bls.SecretKey.fromBytes(interopSecretKey(i)).toPublicKey().toBytes());
}

/** A fresh token labelled `label` with the wrapping key and interop keys `0..count-1` imported. */
export async function tokenWithInteropKeys(label: string, count: number): Promise<TestToken> {
  const token = createToken(label);
  initToken(token.config);
  const store = openKeyStore(token.config);
  try {
    await store.importKeys(Array.from({ length: count }, (_, i) => ({ secretKey: interopSecretKey(i), pubkey: interopPubkey(i) })));
  } finally {
    await store.close();
  }
  return token;
}

export class LogCapture extends Writable {
  readonly chunks: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString("utf8"));
    done();
  }
  get text(): string {
    return this.chunks.join("");
  }
  lines(): Record<string, unknown>[] {
    return this.text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** A config for `token` with its data under `dataDir`, listening on a free loopback port. */
export function testConfig(token: TestToken, dataDir: string, extra: Record<string, unknown> = {}): SignerConfig {
  return parseSignerConfig({
    network: "minimal-devnet",
    listen: { host: "127.0.0.1", port: 0 },
    dataDir,
    hsm: { module: token.config.module, tokenLabel: token.label, pin: { file: token.pinFile } },
    logLevel: "debug",
    ...extra,
  });
}

/** The SQLite file of a config whose slashing database is SQLite (every config testConfig makes without slashingDb). */
export function sqliteFile(config: SignerConfig): string {
  if (config.slashingDb.kind !== "sqlite") throw new Error("this config's slashing database is not SQLite");
  return config.slashingDb.path;
}

export async function start(config: SignerConfig, log = new LogCapture()): Promise<{ signer: RunningSigner; log: LogCapture }> {
  const signer = await startSigner(config, { logDestination: log });
  return { signer, log };
}

export interface HttpReply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a test reads reply fields it asserts on
  json: () => any;
}

export async function http(
  url: string,
  opts: { method?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<HttpReply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, { method: opts.method ?? (body === undefined ? "GET" : "POST"), headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

export function writePrivate(file: string, content: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** A minimal-preset ATTESTATION body for the given epochs (fork at genesis: current version everywhere). */
export function attestationBody(source: number, target: number, opts: { gvr?: string; blockRoot?: string; slot?: number } = {}) {
  return {
    type: "ATTESTATION",
    fork_info: {
      fork: { previous_version: "0x00000001", current_version: "0x01000001", epoch: "0" },
      genesis_validators_root: opts.gvr ?? GVR,
    },
    attestation: {
      slot: String(opts.slot ?? target * 8),
      index: "0",
      beacon_block_root: opts.blockRoot ?? `0x${"11".repeat(32)}`,
      source: { epoch: String(source), root: `0x${"22".repeat(32)}` },
      target: { epoch: String(target), root: `0x${"33".repeat(32)}` },
    },
  };
}

export function blockBody(slot: number, opts: { gvr?: string; bodyRoot?: string } = {}) {
  return {
    type: "BLOCK_V2",
    fork_info: {
      fork: { previous_version: "0x02000001", current_version: "0x03000001", epoch: "0" },
      genesis_validators_root: opts.gvr ?? GVR,
    },
    beacon_block: {
      version: "CAPELLA",
      block_header: {
        slot: String(slot),
        proposer_index: "0",
        parent_root: `0x${"44".repeat(32)}`,
        state_root: `0x${"55".repeat(32)}`,
        body_root: opts.bodyRoot ?? `0x${"66".repeat(32)}`,
      },
    },
  };
}

export function randaoBody(epoch: number, gvr = GVR) {
  return {
    type: "RANDAO_REVEAL",
    fork_info: { fork: { previous_version: "0x00000001", current_version: "0x01000001", epoch: "0" }, genesis_validators_root: gvr },
    randao_reveal: { epoch: String(epoch) },
  };
}

export const GVR = `0x${"ab".repeat(32)}`;
