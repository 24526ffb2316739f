export type UpDown = "up" | "down";

export interface HysteresisReading {
  state: UpDown;
  /** True on the observation that flipped the state. */
  changed: boolean;
  consecutiveBad: number;
  consecutiveGood: number;
}

/**
 * Turns a stream of good/bad observations into a state that flips only after `badToDown` bad observations
 * in a row (down) or `goodToUp` good ones in a row (up). One failed probe never flips it; a flapping
 * signal that never stays bad long enough never flips it either.
 */
export class Hysteresis {
  private state: UpDown;
  private bad = 0;
  private good = 0;

  constructor(
    private readonly badToDown: number,
    private readonly goodToUp: number,
    initial: UpDown = "up",
  ) {
    if (badToDown < 1 || goodToUp < 1) throw new RangeError("hysteresis thresholds must be at least 1");
    this.state = initial;
  }

  observe(isBad: boolean): HysteresisReading {
    if (isBad) {
      this.bad++;
      this.good = 0;
    } else {
      this.good++;
      this.bad = 0;
    }
    const before = this.state;
    if (this.state === "up" && this.bad >= this.badToDown) this.state = "down";
    else if (this.state === "down" && this.good >= this.goodToUp) this.state = "up";
    return { state: this.state, changed: this.state !== before, consecutiveBad: this.bad, consecutiveGood: this.good };
  }

  /** An observation that says nothing either way (e.g. the witness is unreachable): resets the bad streak. */
  inconclusive(): HysteresisReading {
    this.bad = 0;
    return { state: this.state, changed: false, consecutiveBad: 0, consecutiveGood: this.good };
  }

  reset(state: UpDown = "up"): void {
    this.state = state;
    this.bad = 0;
    this.good = 0;
  }

  get current(): UpDown {
    return this.state;
  }
}
