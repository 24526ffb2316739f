// A shared, in-memory view of "the chain" for the simulations: slot clock, deterministic block roots, and
// what was published (so every simulated beacon node answers liveness the same way, as gossip would).
import { createHash } from "node:crypto";

export interface SimChainOptions {
  /** Unix seconds; defaults to the start of the current second (the watchdog's config takes whole seconds). */
  genesisTime?: number;
  slotMs: number;
  slotsPerEpoch: number;
  /** Total validators on the chain (proposers rotate over them). */
  validatorCount: number;
}

export class SimChain {
  readonly genesisTime: number;
  readonly slotMs: number;
  readonly slotsPerEpoch: number;
  readonly validatorCount: number;
  readonly gvr = `0x${"ab".repeat(32)}`;
  private readonly live = new Map<number, Set<string>>();

  constructor(o: SimChainOptions) {
    this.genesisTime = o.genesisTime ?? Math.floor(Date.now() / 1000);
    this.slotMs = o.slotMs;
    this.slotsPerEpoch = o.slotsPerEpoch;
    this.validatorCount = o.validatorCount;
  }

  get genesisMs(): number {
    return this.genesisTime * 1000;
  }

  currentSlot(now = Date.now()): number {
    return Math.max(0, Math.floor((now - this.genesisMs) / this.slotMs));
  }

  epochOf(slot: number): number {
    return Math.floor(slot / this.slotsPerEpoch);
  }

  slotStartMs(slot: number): number {
    return this.genesisMs + slot * this.slotMs;
  }

  proposerOf(slot: number): number {
    return slot % this.validatorCount;
  }

  /** The canonical head block root at `slot` (deterministic: every honest client sees the same). */
  blockRoot(slot: number, variant = ""): string {
    return `0x${createHash("sha256").update(`block:${slot}${variant}`).digest("hex")}`;
  }

  markLive(index: number | string, epoch: number): void {
    let s = this.live.get(epoch);
    if (!s) {
      s = new Set();
      this.live.set(epoch, s);
    }
    s.add(String(index));
  }

  isLive(index: string, epoch: number): boolean {
    return this.live.get(epoch)?.has(index) ?? false;
  }
}
