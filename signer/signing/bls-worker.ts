/**
 * BLS signing worker thread: holds secret keys (blst, native memory) and signs batches of signing roots.
 * Loaded by BlsPool from the compiled dist/ file. Never logs or returns key material.
 */
import os from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { bytesToHex } from "../../common/index.js";
import { pinPreset } from "./consensus.js";
import { assertBlstNative, SECRET_KEY_BYTES, SIGNATURE_BYTES, SIGNING_ROOT_BYTES } from "./bls-protocol.js";
import type { FromWorker, ToWorker, WorkerInit } from "./bls-protocol.js";

const init = workerData as WorkerInit;
pinPreset(init.preset);

// Signing yields the CPU to the main thread (on Linux a thread's nice value is its own): when the machine is
// saturated, accepting, shedding and answering requests stay prompt, and the workers sign with what is left.
if (init.niceness !== undefined) {
  try {
    os.setPriority(0, init.niceness);
  } catch {
    /* not permitted (e.g. a seccomp filter): run at the process's priority */
  }
}

// Imported after the preset is pinned (nothing in @chainsafe/bls reads it, but keep the order obvious).
const { default: bls } = await import("@chainsafe/bls");
assertBlstNative(bls.implementation, "a BLS worker thread");

type SecretKey = ReturnType<typeof bls.SecretKey.fromBytes>;
const keys = new Map<number, SecretKey>();

const port = parentPort;
if (!port) throw new Error("bls-worker must run as a worker thread");

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function addKeys(firstKeyId: number, buffer: ArrayBuffer): string[] {
  const bytes = new Uint8Array(buffer);
  const pubkeys: string[] = [];
  try {
    for (let i = 0; i * SECRET_KEY_BYTES < bytes.length; i++) {
      const sk = bls.SecretKey.fromBytes(bytes.subarray(i * SECRET_KEY_BYTES, (i + 1) * SECRET_KEY_BYTES));
      keys.set(firstKeyId + i, sk);
      pubkeys.push(bytesToHex(sk.toPublicKey().toBytes()));
    }
  } catch (e) {
    // All or nothing: drop the keys of this call that were already loaded.
    for (let i = 0; i * SECRET_KEY_BYTES < bytes.length; i++) keys.delete(firstKeyId + i);
    throw e;
  } finally {
    bytes.fill(0); // blst keeps its own copy; leave no plain copy in this heap
  }
  return pubkeys;
}

function sign(keyIds: Uint32Array, rootsBuffer: ArrayBuffer): { signatures: ArrayBuffer; failed: (string | null)[] } {
  const roots = new Uint8Array(rootsBuffer);
  const out = new Uint8Array(keyIds.length * SIGNATURE_BYTES);
  const failed: (string | null)[] = new Array<string | null>(keyIds.length).fill(null);
  for (let i = 0; i < keyIds.length; i++) {
    const sk = keys.get(keyIds[i]!);
    if (!sk) {
      failed[i] = "key not loaded in worker";
      continue;
    }
    const root = roots.subarray(i * SIGNING_ROOT_BYTES, (i + 1) * SIGNING_ROOT_BYTES);
    out.set(sk.sign(root).toBytes(), i * SIGNATURE_BYTES);
  }
  return { signatures: out.buffer, failed };
}

port.on("message", (message: ToWorker) => {
  switch (message.kind) {
    case "sign": {
      const started = performance.now();
      const { signatures, failed } = sign(message.keyIds, message.roots);
      // The signing time lets the pool estimate its capacity (admission control in the HTTP layer).
      send({ kind: "signed", batchId: message.batchId, signatures, failed, elapsedMs: performance.now() - started }, [signatures]);
      return;
    }
    case "addKeys":
      try {
        send({ kind: "keysAdded", requestId: message.requestId, pubkeys: addKeys(message.firstKeyId, message.keys) });
      } catch (e) {
        // The message of a bad key error names no key material (blst says e.g. "BLST_BAD_ENCODING").
        send({ kind: "failed", requestId: message.requestId, message: e instanceof Error ? e.message : String(e) });
      }
      return;
    case "removeKeys":
      for (const id of message.keyIds) keys.delete(id);
      send({ kind: "keysRemoved", requestId: message.requestId });
      return;
  }
});

send({ kind: "ready", implementation: bls.implementation });
