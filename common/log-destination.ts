/**
 * A log destination that never blocks the process and never takes it down, for both daemons' pino loggers.
 *
 * Why not pino.destination (sonic-boom): on a write error other than EAGAIN (stdout on a full disk: ENOSPC)
 * it emits 'error', pino re-emits it, nothing handles it, and the process starts exiting; pino's exit hook then
 * calls flushSync, which retries the failed write forever with Atomics.wait between tries. The main thread is
 * parked in that loop: no request is answered and SIGTERM is never handled (only SIGKILL ends it). A pipe
 * nobody reads does the same at exit, and while running ties up a libuv thread in a blocking write().
 *
 * Here a log line is something we can afford to lose; signing and shutdown are not:
 * - lines wait in a bounded buffer; when it is full, or a write fails, lines are dropped and counted;
 * - files and devices get asynchronous fs.write calls, one at a time, never retried;
 * - pipes and sockets go through Node's own non-blocking stdio stream (its buffer is our bound);
 * - close() waits for the buffer to drain for a bounded time only.
 */
import fs from "node:fs";

/** About 1 MiB of log lines may wait for a slow reader; beyond that new lines are dropped. */
const DEFAULT_MAX_BUFFERED_BYTES = 1 << 20;
/** How long close() and flush() wait for buffered lines to be written. */
const DEFAULT_FLUSH_TIMEOUT_MS = 1_000;

export interface LogDestinationOptions {
  /** 1 (stdout, default) or 2 (stderr). */
  fd?: 1 | 2;
  maxBufferedBytes?: number;
}

export class NonBlockingLogDestination {
  /** Lines given to write() that never reached the file descriptor (buffer full, write failed, closed). */
  dropped = 0;
  private readonly fd: number;
  private readonly maxBytes: number;
  /** Set for a pipe, socket or terminal: Node's stdio stream writes without blocking the event loop. */
  private readonly stream: NodeJS.WriteStream | undefined;
  // File mode: lines not yet handed to fs.write, and the one write in flight.
  private queue: string[] = [];
  private queuedBytes = 0;
  private inFlight: { buf: Buffer; lines: number } | undefined;
  private streamBroken = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: LogDestinationOptions = {}) {
    this.fd = opts.fd ?? 1;
    this.maxBytes = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    let kind: "file" | "stream" = "file";
    try {
      const st = fs.fstatSync(this.fd);
      if (st.isFIFO() || st.isSocket()) kind = "stream";
      else if (st.isCharacterDevice() && process[this.fd === 1 ? "stdout" : "stderr"].isTTY) kind = "stream";
    } catch {
      // A closed descriptor: every write fails and is counted.
    }
    if (kind === "stream") {
      this.stream = this.fd === 1 ? process.stdout : process.stderr;
      // The stream errors once (EPIPE: the reader is gone); from then on everything is dropped.
      this.stream.on("error", () => {
        this.streamBroken = true;
        this.wakeIdle();
      });
    }
  }

  /** pino calls this once per log line. Never throws, never blocks. */
  write(line: string): boolean {
    if (this.closed) {
      this.dropped++;
      return true;
    }
    if (this.stream) return this.writeStream(this.stream, line);
    const bytes = Buffer.byteLength(line);
    if (this.queuedBytes + (this.inFlight?.buf.length ?? 0) + bytes > this.maxBytes) {
      this.dropped++;
      return true;
    }
    this.queue.push(line);
    this.queuedBytes += bytes;
    if (!this.inFlight) this.writeNext();
    return true;
  }

  /** pino's logger.flush(cb) lands here: waits at most DEFAULT_FLUSH_TIMEOUT_MS, never fails. */
  flush(cb?: (err?: Error) => void): void {
    void this.drained(DEFAULT_FLUSH_TIMEOUT_MS).then(() => cb?.());
  }

  /**
   * Stops taking lines, waits up to `timeoutMs` for the buffered ones, then gives up on the rest (counted as
   * dropped). Resolves whether or not the reader kept up, so shutdown never waits on a log reader.
   */
  async close(timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS): Promise<void> {
    if (this.closed) return;
    await this.drained(timeoutMs);
    this.closed = true;
    if (!this.stream) {
      this.dropped += this.queue.length;
      this.queue = [];
      this.queuedBytes = 0;
    }
  }

  private writeStream(stream: NodeJS.WriteStream, line: string): boolean {
    if (this.streamBroken || stream.destroyed || stream.writableLength + line.length > this.maxBytes) {
      this.dropped++;
      return true;
    }
    stream.write(line, (err) => {
      if (err) this.dropped++;
    });
    return true;
  }

  /** Hands everything queued to one fs.write; a failed write drops its lines (no retry: the next line tries again). */
  private writeNext(): void {
    if (this.queue.length === 0) {
      this.wakeIdle();
      return;
    }
    const lines = this.queue.length;
    const buf = Buffer.from(this.queue.join(""), "utf8");
    this.queue = [];
    this.queuedBytes = 0;
    this.writeChunk({ buf, lines });
  }

  private writeChunk(chunk: { buf: Buffer; lines: number }): void {
    this.inFlight = chunk;
    fs.write(this.fd, chunk.buf, 0, chunk.buf.length, null, (err, written) => {
      this.inFlight = undefined;
      if (err) {
        this.dropped += chunk.lines;
      } else if (written < chunk.buf.length) {
        // Short write (the disk filled up part way): the rest goes next; it fails and is counted if still full.
        const rest = chunk.buf.subarray(written);
        let lines = 0;
        for (const b of rest) if (b === 0x0a) lines++;
        this.writeChunk({ buf: rest, lines: Math.max(lines, 1) });
        return;
      }
      this.writeNext();
    });
  }

  private drained(timeoutMs: number): Promise<void> {
    const idle = () => (this.stream ? this.streamBroken || this.stream.writableLength === 0 : !this.inFlight && this.queue.length === 0);
    if (idle()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      // A stream's 'drain' only fires after a write returned false; polling covers every case cheaply.
      const poll = setInterval(() => idle() && done(), 10);
      this.idleWaiters.push(() => idle() && done());
    });
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * process.stdout / process.stderr on a full disk throw ENOSPC from a synchronous write and emit 'error', which
 * nothing handles: the process dies for a status line it could not print. A lost status line is harmless.
 */
export function keepStdioErrorsFromKillingTheProcess(): void {
  for (const s of [process.stdout, process.stderr]) {
    if (s.listenerCount("error") === 0) s.on("error", () => {});
  }
}
