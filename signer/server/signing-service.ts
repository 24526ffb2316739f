/**
 * The sign path: validate → signing root → (slashable) durable check-and-record → BLS pool → release.
 * Release re-checks that the client is enabled, appends to the audit feed, waits (blocks and attestations) for
 * that entry to be on disk, and sends through the fencing's release gate, where the last check and the send are
 * one step: a disable answered by the admin API (of any instance sharing the state) can never be overtaken by a
 * signature already in flight. The request counts as in flight until it is sent.
 */
import { bytesToHex, hexToBytes, normalizeHex } from "../../common/index.js";
import type { SlashingProtection } from "../../slashing-db/index.js";
import {
  ClientGoneError,
  computeSigningRoot,
  UnknownPubkeyError,
  validateSignRequest,
  type BlsPool,
  type NetworkConfig,
  type SignRequest,
  type SlashingFacts,
} from "../signing/index.js";
import { AdmissionControl, type ShedReason } from "./admission.js";
import { AuditLogUnavailableError, type AuditLog } from "./audit-log.js";
import { canonicalPubkey, PUBKEY_PARAM } from "./pubkey-param.js";
import type { ClientState } from "./auth.js";
import type { ClientFencing } from "./fencing/client-fencing.js";
import { ClientDisabledError, InvalidPubkeyIdentifierError, KeyNotAllowedError } from "./service-errors.js";
import type { WallClockGuard } from "./wall-clock-guard.js";

/** Web3Signer accepts the key with or without 0x (and adds it). */

/** A signature made and recorded, waiting to be released to its client. */
export interface Signed {
  pubkey: string;
  request: SignRequest;
  signingRoot: Uint8Array;
  slashing: SlashingFacts;
  signature: Uint8Array;
}

export interface SigningServiceDeps {
  network: NetworkConfig;
  /** Durable check-and-record, and the owner of the network pin. */
  slashing: Pick<SlashingProtection, "checkAndRecord" | "pin" | "genesisValidatorsRoot" | "highWatermark">;
  pool: BlsPool;
  fencing: ClientFencing;
  audit: AuditLog;
  /** Blocks and attestations: audit entry on disk before the reply (false only in a benchmark, to measure it). */
  durableAudit?: boolean;
  maxQueueDepth: number;
  /** Refuses blocks and attestations far ahead of the wall clock; undefined where genesis time is unknown. */
  wallClock?: WallClockGuard;
  /** A request expected to wait longer than this for its signature is refused as OVERLOADED (admission.ts). */
  maxWaitMs: number;
  /** Counts shed requests by reason (metrics). */
  onShed?: (reason: ShedReason | "client_gone") => void;
}

export class SigningService {
  /** Keys that may be signed with (lower-case 0x). Removed keys leave this set before the pool. */
  readonly keys: Set<string>;
  private inFlightTotal = 0;
  /** Requests in flight per key, so a key deletion can wait for them before exporting its history. */
  private readonly inFlightByKey = new Map<string, number>();
  private readonly keyIdleWaiters = new Map<string, (() => void)[]>();
  readonly admission: AdmissionControl;

  constructor(private readonly deps: SigningServiceDeps) {
    this.keys = new Set(deps.pool.publicKeys);
    this.admission = new AdmissionControl({
      maxWaitMs: deps.maxWaitMs,
      maxQueueDepth: deps.maxQueueDepth,
      capacityHint: () => deps.pool.capacityPerMs,
      ...(deps.onShed ? { onShed: deps.onShed } : {}),
    });
  }

  get queueDepth(): number {
    return this.inFlightTotal;
  }

  get genesisValidatorsRoot(): string | null {
    return this.deps.slashing.genesisValidatorsRoot;
  }

  /** The all-keys high watermark as the database holds it now (GET /api/v1/eth2/highWatermark). */
  highWatermark(): ReturnType<SlashingProtection["highWatermark"]> {
    return this.deps.slashing.highWatermark();
  }

  /** Admission: everything that can be refused without touching the body. Throws a domain error (service-errors.ts, ../signing/errors.ts). */
  admit(client: ClientState, pubkeyParam: string): string {
    if (!PUBKEY_PARAM.test(pubkeyParam)) throw new InvalidPubkeyIdentifierError();
    const pubkey = canonicalPubkey(pubkeyParam);
    if (!client.mayUse(pubkey)) throw new KeyNotAllowedError(client.id, pubkey);
    if (!this.keys.has(pubkey)) throw new UnknownPubkeyError(pubkey);
    if (!this.deps.fencing.isEnabled(client.id)) throw new ClientDisabledError(client.id);
    // Last: only a request that would otherwise be signed is refused for load (and counted as shed).
    this.admission.check(this.inFlightTotal);
    return pubkey;
  }

  /**
   * Signs an admitted request. Resolves once the slashing record (if any) is on disk and the signature is
   * made; the caller then calls `release` in the same synchronous step as its reply. `clientGone` says whether the
   * client has closed its connection: then nothing is recorded (if not yet) and nothing signed (ClientGoneError).
   * Call it right after `admit`, in the same synchronous step.
   */
  async sign(client: ClientState, pubkey: string, body: unknown, clientGone: () => boolean = () => false): Promise<Signed> {
    const ticket = this.admission.ticket(this.inFlightTotal);
    this.inFlightTotal++;
    this.inFlightByKey.set(pubkey, (this.inFlightByKey.get(pubkey) ?? 0) + 1);
    client.inFlight++;
    // On success the request stays in flight until release() has sent (or refused) it.
    let signed = false;
    try {
      const request = validateSignRequest(body);
      this.deps.wallClock?.check(request); // before the network pin and the record: a refusal leaves no trace
      const gvr = request.fork_info?.genesis_validators_root;
      // One network per signer: the first genesis_validators_root seen (or the configured one) is pinned, durably
      // before anything is signed for it; another is refused (GENESIS_VALIDATORS_ROOT_MISMATCH).
      if (gvr !== undefined) await this.deps.slashing.pin(hexToBytes(gvr));
      const { signingRoot, slashing } = computeSigningRoot(request, this.deps.network);
      if (clientGone()) throw this.shedGone();
      if (slashing.kind === "block") {
        await this.deps.slashing.checkAndRecord({ kind: "block", pubkey: hexToBytes(pubkey), slot: slashing.slot, signingRoot });
      } else if (slashing.kind === "attestation") {
        const { sourceEpoch, targetEpoch } = slashing;
        await this.deps.slashing.checkAndRecord({ kind: "attestation", pubkey: hexToBytes(pubkey), sourceEpoch, targetEpoch, signingRoot });
      }
      // Skipping after the record is the safe direction: the record only ever refuses more.
      const signature = await this.deps.pool.sign(pubkey, signingRoot, clientGone).catch((err: unknown) => {
        throw err instanceof ClientGoneError ? this.shedGone() : err;
      });
      this.admission.signed(ticket);
      signed = true;
      return { pubkey, request, signingRoot, slashing, signature };
    } finally {
      if (!signed) this.settle(client, pubkey);
    }
  }

  /** Ends a request's time in flight; wakes a key deletion waiting for it. */
  private settle(client: ClientState, pubkey: string): void {
    this.inFlightTotal--;
    client.inFlight--;
    const left = (this.inFlightByKey.get(pubkey) ?? 1) - 1;
    if (left > 0) this.inFlightByKey.set(pubkey, left);
    else {
      this.inFlightByKey.delete(pubkey);
      const waiters = this.keyIdleWaiters.get(pubkey);
      if (waiters) {
        this.keyIdleWaiters.delete(pubkey);
        for (const wake of waiters) wake();
      }
    }
  }

  /**
   * The last gate before a signature leaves: the client must still be enabled, before and (blocks and
   * attestations) after their audit entry is on disk. `send` is called with the hex signature by the release
   * gate, in one step with the last check. Throws ClientDisabledError, SlashingDbUnavailableError when a shared
   * fencing state cannot be read (fail closed), or AuditLogUnavailableError (with a
   * `cause`) when the feed cannot be written (the slashing record stays: refusing after recording is the safe direction; an
   * entry written for a signature refused here makes the feed over-report, never under-report).
   */
  async release(client: ClientState, signed: Signed, send: (signature: string) => void): Promise<void> {
    try {
      this.checkStillEnabled(client);
      const signature = bytesToHex(signed.signature);
      const now = Date.now();
      const at = new Date(now).toISOString();
      const request = signed.request;
      const slot = slotOf(request);
      const attestation = signed.slashing.kind === "attestation" ? signed.slashing : undefined;
      const entry = {
        clientId: client.id,
        pubkey: signed.pubkey,
        type: request.type,
        slot,
        sourceEpoch: attestation ? attestation.sourceEpoch.toString() : null,
        targetEpoch: attestation ? attestation.targetEpoch.toString() : null,
        signingRoot: bytesToHex(signed.signingRoot), // hex from here on: the audit feed is JSON text
        signature,
        at,
      };
      try {
        // Slashable types: no signature leaves without its entry on disk. Others are buffered.
        const onDisk = this.deps.audit.append(entry, {
          durable: this.deps.durableAudit !== false && (signed.slashing.kind === "block" || signed.slashing.kind === "attestation"),
        });
        if (onDisk) await onDisk;
      } catch (err) {
        // AUDIT_LOG_UNAVAILABLE with the cause: counted as audit_unavailable, not as overload (errors.ts).
        if (err instanceof AuditLogUnavailableError) throw new AuditLogUnavailableError(`signature withheld: ${err.message}`, err.failure);
        throw err;
      }
      // The last check and the send in one step no disable can come between (ClientFencing.releaseIfEnabled); on
      // PostgreSQL it holds the shared fencing lock, so a disable through any instance is answered after this send.
      const sent = await this.deps.fencing.releaseIfEnabled(client.id, () => {
        client.noteSigned({ pubkey: signed.pubkey, type: request.type, slot, at }, now);
        send(signature);
      });
      if (!sent) throw new ClientDisabledError(client.id, true);
    } finally {
      this.settle(client, signed.pubkey);
    }
  }

  private checkStillEnabled(client: ClientState): void {
    if (!this.deps.fencing.isEnabled(client.id)) {
      throw new ClientDisabledError(client.id, true);
    }
  }

  private shedGone(): ClientGoneError {
    this.deps.onShed?.("client_gone");
    return new ClientGoneError();
  }

  /** Makes keys signable (after the pool has them). */
  addKeys(pubkeys: string[]): void {
    for (const p of pubkeys) this.keys.add(normalizeHex(p));
  }

  /** Stops admitting requests for these keys and resolves when those already admitted have finished. */
  async retireKeys(pubkeys: string[]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const raw of pubkeys) {
      const p = normalizeHex(raw);
      this.keys.delete(p);
      if ((this.inFlightByKey.get(p) ?? 0) > 0) {
        waits.push(
          new Promise<void>((resolve) => {
            const list = this.keyIdleWaiters.get(p) ?? [];
            list.push(resolve);
            this.keyIdleWaiters.set(p, list);
          }),
        );
      }
    }
    await Promise.all(waits);
  }
}

/** The slot a request is about, for the audit feed; null for types that have none (epochs, deposits, registrations). */
export function slotOf(request: SignRequest): string | null {
  switch (request.type) {
    case "BLOCK":
      return request.block.slot;
    case "BLOCK_V2": {
      const b = request.beacon_block;
      return "block" in b ? b.block.slot : b.block_header.slot;
    }
    case "ATTESTATION":
      return request.attestation.slot;
    case "AGGREGATION_SLOT":
      return request.aggregation_slot.slot;
    case "AGGREGATE_AND_PROOF":
      return request.aggregate_and_proof.aggregate.data.slot;
    case "AGGREGATE_AND_PROOF_V2": {
      const a = request.aggregate_and_proof;
      return "data" in a && "version" in a ? a.data.aggregate.data.slot : (a as { aggregate: { data: { slot: string } } }).aggregate.data.slot;
    }
    case "SYNC_COMMITTEE_MESSAGE":
      return request.sync_committee_message.slot;
    case "SYNC_COMMITTEE_SELECTION_PROOF":
      return request.sync_aggregator_selection_data.slot;
    case "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF":
      return request.contribution_and_proof.contribution.slot;
    default:
      return null;
  }
}
