/**
 * Load generator for the signer bench, run as a child process so it never shares the signer's event loop.
 * A minimal HTTP/1.1 keep-alive client over raw sockets (like wrk): each connection sends one request, reads
 * the whole reply, sends the next. Every request is a new ATTESTATION (a fresh target epoch for its key), so
 * each one is a durable slashing-database record.
 *
 * Modes: "closed" (N connections as fast as replies come back: throughput) or "open" (requests started at a
 * fixed rate whatever the replies, on as many connections as needed: latency at an offered load). With
 * `timeoutMs` a client gives up on a request after that long, as a validator client does: it closes the
 * connection (the signer should then not sign it) and opens a new one.
 * Parent → child: a LoadJob message; child → parent: a LoadResult. VIGIL_BENCH_TIMELINE=1 prints the worst latency
 * per 250 ms window to stderr (to tell a steady tail from a few stalls).
 */
import net from "node:net";

export interface LoadJob {
  host: string;
  port: number;
  pubkeys: string[];
  mode: "closed" | "open";
  connections: number;
  /** Requests per second for "open". */
  rate?: number;
  seconds: number;
  warmupSeconds: number;
  /** Stop after this many requests (closed mode), e.g. one pass over the keys to warm up. */
  stopAfter?: number;
  /** Open mode: give up on a request after this long (close its connection, open another). */
  timeoutMs?: number;
  /** First target epoch to use (each run must start above the previous run's). */
  firstEpoch: number;
  genesisValidatorsRoot: string;
}

export interface LoadResult {
  completed: number;
  errors: number;
  statuses: Record<string, number>;
  elapsedSeconds: number;
  /** Sorted latencies (ms) of requests completed in the measured window. */
  latenciesMs: number[];
  /** Requests that were due but found no free connection (open mode). */
  lagged: number;
  /** Sorted latencies (ms) of the 503 replies in the measured window. */
  shedLatenciesMs: number[];
  /** Requests given up after timeoutMs in the measured window. */
  timedOut: number;
  /** CPU time this generator used (user + system), to see what it took from the machine. */
  cpuMs: number;
}

function requestBytes(job: LoadJob, pubkey: string, epoch: number): Buffer {
  const body =
    `{"type":"ATTESTATION","fork_info":{"fork":{"previous_version":"0x04000000","current_version":"0x05000000","epoch":"0"},` +
    `"genesis_validators_root":"${job.genesisValidatorsRoot}"},"attestation":{"slot":"${epoch * 32}","index":"0",` +
    `"beacon_block_root":"0x${epoch.toString(16).padStart(64, "0")}","source":{"epoch":"${epoch - 1}","root":"0x${"00".repeat(32)}"},` +
    `"target":{"epoch":"${epoch}","root":"0x${"11".repeat(32)}"}}}`;
  return Buffer.from(
    `POST /api/v1/eth2/sign/${pubkey} HTTP/1.1\r\nhost: ${job.host}:${job.port}\r\ncontent-type: application/json\r\n` +
      `accept: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

class Connection {
  busy = false;
  /** Given up on (timed out): never reused. */
  dead = false;
  private buffer = Buffer.alloc(0);
  private onReply: ((status: number) => void) | undefined;
  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.data(chunk));
  }
  send(bytes: Buffer, onReply: (status: number) => void): void {
    this.busy = true;
    this.onReply = onReply;
    this.socket.write(bytes);
  }
  private data(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.buffer.subarray(0, end).toString("latin1");
      const m = /content-length:\s*(\d+)/i.exec(head);
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (this.buffer.length < total) return;
      const status = Number(head.slice(9, 12));
      this.buffer = this.buffer.subarray(total);
      const cb = this.onReply;
      this.onReply = undefined;
      this.busy = false;
      cb?.(status);
    }
  }
}

async function connect(job: LoadJob): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(job.port, job.host, () => resolve(new Connection(socket)));
    socket.once("error", reject);
  });
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const cpu0 = process.cpuUsage();
  const conns = await Promise.all(Array.from({ length: job.connections }, () => connect(job)));
  const epochs = new Array<number>(job.pubkeys.length).fill(job.firstEpoch);
  let cursor = 0;
  const next = (): Buffer => {
    const k = cursor++ % job.pubkeys.length;
    return requestBytes(job, job.pubkeys[k]!, epochs[k]!++);
  };
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  const shedLatencies: number[] = [];
  let timedOut = 0;
  let completed = 0;
  let errors = 0;
  let lagged = 0;
  const timeline: [number, number][] = [];
  const start = performance.now();
  const measureFrom = start + job.warmupSeconds * 1000;
  const end = measureFrom + job.seconds * 1000;

  // Open mode: idle connections (a stack: O(1) per request even with thousands of connections).
  const free: Connection[] = [...conns];
  let inUse = 0;

  const fire = (conn: Connection, onDone: () => void): void => {
    const sent = performance.now();
    let timer: NodeJS.Timeout | undefined;
    if (job.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        // The client gives up: closes the connection, and a fresh one takes its place.
        if (sent >= measureFrom && sent <= end) timedOut++;
        conn.dead = true;
        conn.socket.destroy();
        void connect(job).then(
          (fresh) => {
            conns.push(fresh);
            free.push(fresh);
          },
          () => {},
        );
        onDone();
      }, job.timeoutMs);
    }
    conn.send(next(), (status) => {
      clearTimeout(timer);
      if (conn.dead) return;
      const now = performance.now();
      if (status === 503 && sent >= measureFrom && now <= end) shedLatencies.push(now - sent);
      if (sent >= measureFrom && now <= end) {
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status === 200) {
          completed++;
          latencies.push(now - sent);
          if (process.env.VIGIL_BENCH_TIMELINE) timeline.push([Math.round(sent - start), Math.round(now - sent)]);
        } else errors++;
      }
      onDone();
    });
  };

  if (job.mode === "closed") {
    await Promise.all(
      conns.map(
        (conn) =>
          new Promise<void>((resolve) => {
            const loop = () => (performance.now() < end && (job.stopAfter === undefined || cursor < job.stopAfter) ? fire(conn, loop) : resolve());
            loop();
          }),
      ),
    );
  } else {
    const rate = job.rate ?? 1000;
    await new Promise<void>((resolve) => {
      let sentCount = 0;
      const tick = () => {
        const now = performance.now();
        if (now >= end) {
          const wait = setInterval(() => {
            if (inUse === 0) {
              clearInterval(wait);
              resolve();
            }
          }, 5);
          return;
        }
        const due = Math.floor(((now - start) / 1000) * rate) - sentCount;
        for (let i = 0; i < due; i++) {
          const conn = free.pop();
          sentCount++;
          if (!conn) {
            if (now >= measureFrom) lagged++;
            continue;
          }
          inUse++;
          fire(conn, () => {
            inUse--;
            if (!conn.dead) free.push(conn);
          });
        }
        setTimeout(tick, 1); // not setImmediate: a busy loop would steal a core from the signer
      };
      tick();
    });
  }
  for (const c of conns) c.socket.destroy();
  latencies.sort((a, b) => a - b);
  shedLatencies.sort((a, b) => a - b);
  if (process.env.VIGIL_BENCH_TIMELINE) {
    const worst = new Map<number, number>();
    for (const [t, l] of timeline) worst.set(Math.floor(t / 250), Math.max(worst.get(Math.floor(t / 250)) ?? 0, l));
    process.stderr.write(`worst latency per 250 ms: ${[...worst.values()].join(" ")}\n`);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    completed,
    errors,
    statuses,
    elapsedSeconds: job.seconds,
    latenciesMs: latencies,
    lagged,
    shedLatenciesMs: shedLatencies,
    timedOut,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

// As a child process: one job in, one result out.
if (process.send) {
  process.once("message", (job: LoadJob) => {
    runLoad(job).then(
      (result) => process.send!(result, () => process.exit(0)),
      (err: unknown) => {
        process.stderr.write(`load generator failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
