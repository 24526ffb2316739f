import fs from "node:fs";
import path from "node:path";

/**
 * Test-only hook: with VIGIL_WATCHDOG_PAUSE_AT=STATE (before the step's action) or STATE:after (after the
 * action, before the next transition is committed), the executor writes `<dataDir>/paused-at` and waits
 * forever there, so a test can SIGKILL the process at an exact point. Inert when the variable is unset.
 */
export class PauseHook {
  constructor(
    private readonly point: string | undefined,
    private readonly dataDir: string,
    private readonly onPause: (point: string) => void = () => {},
  ) {}

  static fromEnv(dataDir: string, onPause?: (point: string) => void): PauseHook {
    const v = process.env.VIGIL_WATCHDOG_PAUSE_AT?.trim();
    return new PauseHook(v ? v : undefined, dataDir, onPause);
  }

  async at(point: string): Promise<void> {
    if (this.point !== point) return;
    this.onPause(point);
    fs.writeFileSync(path.join(this.dataDir, "paused-at"), `${point}\n`, { mode: 0o600 });
    await new Promise<never>(() => {}); // until killed
  }
}
