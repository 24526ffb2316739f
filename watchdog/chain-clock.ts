/** Slot and epoch arithmetic from genesis time and slot duration (milliseconds, so fast test slots work). */
export class ChainClock {
  constructor(
    readonly genesisTimeMs: number,
    readonly slotDurationMs: number,
    readonly slotsPerEpoch: number,
    private readonly now: () => number = Date.now,
  ) {}

  currentSlot(): number {
    return Math.max(0, Math.floor((this.now() - this.genesisTimeMs) / this.slotDurationMs));
  }

  currentEpoch(): number {
    return Math.floor(this.currentSlot() / this.slotsPerEpoch);
  }

  /** Wall-clock ms at which `epoch` starts. */
  epochStartMs(epoch: number): number {
    return this.genesisTimeMs + epoch * this.slotsPerEpoch * this.slotDurationMs;
  }

  get epochDurationMs(): number {
    return this.slotsPerEpoch * this.slotDurationMs;
  }

  nowMs(): number {
    return this.now();
  }
}
