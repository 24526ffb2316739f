// A simulated validator client: every slot, for each of its keys, it asks the signer (over HTTP, with its
// bearer token) for what a real client would: a SYNC_COMMITTEE_MESSAGE every slot (small sets are always in
// the sync committee), an ATTESTATION once per epoch at the key's duty slot, and a BLOCK_V2 when it is the
// proposer; bodies are shaped like Lodestar 1.5.1's (minimal preset). What is signed is published to the
// beacon node (which makes the keys live on chain). It can be stopped and started (crash, zombie), and a
// zombie can re-send conflicting messages for slots and epochs it already signed.
import Fastify, { type FastifyInstance } from "fastify";
import type { SimChain } from "./chain.js";

export interface SimKey {
  index: number;
  pubkey: string;
}

export interface SignAttempt {
  at: number;
  slot: number;
  type: string;
  pubkey: string;
  status: number;
  code?: string;
}

const ALTAIR_FORK = { previous_version: "0x00000001", current_version: "0x01000001", epoch: "0" };
const CAPELLA_FORK = { previous_version: "0x02000001", current_version: "0x03000001", epoch: "0" };

export class SimValidatorClient {
  readonly attempts: SignAttempt[] = [];
  running = false;
  /** Status probe answers hang/fail: the watchdog loses sight of this "host". */
  blindWatchdog = false;
  /** On the next start, re-send conflicting attestations/blocks for what it signed before it stopped. */
  conflictOnRestart = false;
  private timer: NodeJS.Timeout | undefined;
  private lastSlot = -1;
  private readonly signedTargets = new Map<string, number>(); // pubkey -> highest target epoch signed
  private readonly signedBlocks = new Map<string, number>(); // pubkey -> highest block slot signed
  private control: FastifyInstance | undefined;
  controlUrl = "";

  constructor(
    readonly name: string,
    private readonly o: { chain: SimChain; signerUrl: string; token: string; beaconUrl: string; keys: SimKey[] },
  ) {}

  /** The loopback control endpoint the watchdog's service commands talk to (like systemctl would). */
  async listenControl(): Promise<string> {
    const app = Fastify({ logger: false });
    app.get("/status", async (req, reply) => {
      if (this.blindWatchdog) {
        req.raw.socket.destroy();
        return reply;
      }
      return reply.type("text/plain").send(this.running ? "active" : "inactive");
    });
    app.post("/stop", async () => {
      this.stop();
      return "stopped";
    });
    app.post("/start", async () => {
      this.start();
      return "started";
    });
    this.controlUrl = await app.listen({ host: "127.0.0.1", port: 0 });
    this.control = app;
    return this.controlUrl;
  }

  /** argv commands for the watchdog config: status (exit 0 + "active", exit 3 + "inactive"), stop, start. */
  serviceCommands(): { statusCommand: string[]; stopCommand: string[]; startCommand: string[] } {
    const u = this.controlUrl;
    return {
      statusCommand: ["sh", "-c", `s=$(curl -s --max-time 1 ${u}/status) || exit 4; echo "$s"; [ "$s" = active ] || exit 3`],
      stopCommand: ["curl", "-sf", "--max-time", "2", "-X", "POST", `${u}/stop`],
      startCommand: ["curl", "-sf", "--max-time", "2", "-X", "POST", `${u}/start`],
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.conflictOnRestart) void this.sendConflicts();
    this.schedule();
  }

  /** A crash: stops at once; requests already sent stay in flight. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.stop();
    await this.control?.close();
  }

  signedCount(): number {
    return this.attempts.filter((a) => a.status === 200).length;
  }

  firstSignedAfter(t: number): SignAttempt | undefined {
    return this.attempts.find((a) => a.status === 200 && a.at >= t);
  }

  private schedule(): void {
    if (!this.running) return;
    const c = this.o.chain;
    const next = c.slotStartMs(c.currentSlot() + 1) + 20; // a little into the slot, like a real client
    this.timer = setTimeout(
      () => {
        const slot = c.currentSlot();
        if (slot !== this.lastSlot) {
          this.lastSlot = slot;
          void this.duties(slot);
        }
        this.schedule();
      },
      Math.max(0, next - Date.now()),
    );
  }

  private async duties(slot: number): Promise<void> {
    const c = this.o.chain;
    const epoch = c.epochOf(slot);
    const jobs: Promise<void>[] = [];
    for (const key of this.o.keys) {
      jobs.push(this.sync(key, slot));
      if (slot % c.slotsPerEpoch === key.index % c.slotsPerEpoch) jobs.push(this.attest(key, slot, epoch, c.blockRoot(slot)));
      if (c.proposerOf(slot) === key.index) jobs.push(this.propose(key, slot, ""));
    }
    await Promise.all(jobs);
  }

  private async sync(key: SimKey, slot: number): Promise<void> {
    const body = {
      type: "SYNC_COMMITTEE_MESSAGE",
      fork_info: this.forkInfo(ALTAIR_FORK),
      sync_committee_message: { beacon_block_root: this.o.chain.blockRoot(slot), slot: String(slot) },
    };
    if (await this.sign(key, slot, body)) await this.publish("/eth/v1/beacon/pool/sync_committees", [{ index: key.index, epoch: this.o.chain.epochOf(slot) }]);
  }

  private async attest(key: SimKey, slot: number, epoch: number, blockRoot: string): Promise<void> {
    const source = Math.max(0, epoch - 1);
    const body = {
      type: "ATTESTATION",
      fork_info: this.forkInfo(ALTAIR_FORK),
      attestation: {
        slot: String(slot),
        index: "0",
        beacon_block_root: blockRoot,
        source: { epoch: String(source), root: this.o.chain.blockRoot(source * this.o.chain.slotsPerEpoch) },
        target: { epoch: String(epoch), root: this.o.chain.blockRoot(epoch * this.o.chain.slotsPerEpoch) },
      },
    };
    if (await this.sign(key, slot, body)) {
      this.signedTargets.set(key.pubkey, Math.max(epoch, this.signedTargets.get(key.pubkey) ?? -1));
      await this.publish("/eth/v1/beacon/pool/attestations", [{ index: key.index, epoch }]);
    }
  }

  private async propose(key: SimKey, slot: number, variant: string): Promise<void> {
    const body = {
      type: "BLOCK_V2",
      fork_info: this.forkInfo(CAPELLA_FORK),
      beacon_block: {
        version: "CAPELLA",
        block_header: {
          slot: String(slot),
          proposer_index: String(key.index),
          parent_root: this.o.chain.blockRoot(slot - 1),
          state_root: this.o.chain.blockRoot(slot, `state${variant}`),
          body_root: this.o.chain.blockRoot(slot, `body:${this.name}${variant}`),
        },
      },
    };
    if (await this.sign(key, slot, body)) {
      this.signedBlocks.set(key.pubkey, Math.max(slot, this.signedBlocks.get(key.pubkey) ?? -1));
      await this.publish("/eth/v2/beacon/blocks", { index: key.index, epoch: this.o.chain.epochOf(slot) });
    }
  }

  /** What a zombie with a stale view does: conflicting votes and blocks for what it already signed. */
  private async sendConflicts(): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const key of this.o.keys) {
      const target = this.signedTargets.get(key.pubkey);
      if (target !== undefined)
        jobs.push(
          this.attest(
            key,
            target * this.o.chain.slotsPerEpoch + (key.index % this.o.chain.slotsPerEpoch),
            target,
            this.o.chain.blockRoot(0, `zombie:${this.name}`),
          ),
        );
      const blockSlot = this.signedBlocks.get(key.pubkey);
      if (blockSlot !== undefined) jobs.push(this.propose(key, blockSlot, ":zombie"));
    }
    await Promise.all(jobs);
  }

  private forkInfo(fork: object) {
    return { fork, genesis_validators_root: this.o.chain.gvr };
  }

  private async sign(key: SimKey, slot: number, body: { type: string }): Promise<boolean> {
    const at = Date.now();
    try {
      const res = await fetch(`${this.o.signerUrl}/api/v1/eth2/sign/${key.pubkey}`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${this.o.token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await res.text();
      let code: string | undefined;
      if (res.status !== 200) {
        try {
          code = (JSON.parse(text) as { code?: string }).code;
        } catch {
          /* not JSON */
        }
      }
      this.attempts.push({ at, slot, type: body.type, pubkey: key.pubkey, status: res.status, ...(code ? { code } : {}) });
      return res.status === 200;
    } catch {
      this.attempts.push({ at, slot, type: body.type, pubkey: key.pubkey, status: 0, code: "UNREACHABLE" });
      return false;
    }
  }

  private async publish(route: string, body: unknown): Promise<void> {
    try {
      await fetch(`${this.o.beaconUrl}${route}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(2_000),
      });
    } catch {
      /* a node that is down loses the message, as it would */
    }
  }
}
