/**
 * Progress on stderr: a redrawn bar on a terminal, a plain line every `intervalMs` otherwise (journald
 * and CI logs do not want carriage returns). Never writes to stdout, which carries command output.
 */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private lastDraw: number;
  private readonly tty: boolean;

  /** `stream` null: no output (tests, --quiet). */
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream | null = process.stderr,
    private readonly intervalMs = 10_000,
  ) {
    this.tty = stream?.isTTY === true;
    this.lastDraw = this.tty ? 0 : this.started; // a plain log gets its first line after one interval
  }

  /** Sets the absolute count. */
  update(done: number): void {
    this.done = done;
    const now = Date.now();
    const every = this.tty ? 100 : this.intervalMs;
    if (now - this.lastDraw >= every && done < this.total) {
      this.lastDraw = now;
      this.draw(false);
    }
  }

  finish(): void {
    this.draw(true);
  }

  /** Ends a half-drawn bar so an error message starts on its own line. */
  abort(): void {
    if (this.tty && this.lastDraw > 0) this.stream?.write("\n");
  }

  private draw(final: boolean): void {
    if (!this.stream || this.total === 0) return;
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 && !final ? ` ETA ${formatSeconds((this.total - this.done) / rate)}` : "";
    const stats = `${this.done}/${this.total} ${rate.toFixed(1)}/s${final ? ` in ${formatSeconds(secs)}` : eta}`;
    if (this.tty) {
      const width = 30;
      const filled = Math.round((width * this.done) / this.total);
      this.stream.write(`\r${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${stats}\x1b[K${final ? "\n" : ""}`);
    } else {
      this.stream.write(`${this.label}: ${stats}\n`);
    }
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
