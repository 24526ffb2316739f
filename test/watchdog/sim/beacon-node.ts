// A simulated beacon node (fastify, loopback) with scriptable health, sync state, peers and liveness.
// Validator clients publish to it; liveness comes from the shared SimChain. `blindWatchdog` makes the
// node unreachable for the watchdog's probes only (the validator client still uses it), to simulate the
// watchdog losing sight of a stack that keeps working.
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { SimChain } from "./chain.js";

export interface SimBeaconState {
  health: number;
  isSyncing: boolean;
  syncDistance: number;
  elOffline: boolean;
  peers: number;
  /** Probe routes (health, syncing, peer_count) destroy the connection. */
  blindWatchdog: boolean;
  /** Every route destroys the connection (the node is down). */
  down: boolean;
}

export class SimBeaconNode {
  readonly state: SimBeaconState = { health: 200, isSyncing: false, syncDistance: 0, elOffline: false, peers: 50, blindWatchdog: false, down: false };
  readonly published = { attestations: 0, blocks: 0, syncMessages: 0 };

  private constructor(
    readonly name: string,
    private readonly app: FastifyInstance,
    readonly url: string,
  ) {}

  static async start(name: string, chain: SimChain): Promise<SimBeaconNode> {
    const app = Fastify({ logger: false });
    let node: SimBeaconNode | undefined;
    const gate = (req: FastifyRequest, probe: boolean): boolean => {
      const s = node!.state;
      if (s.down || (probe && s.blindWatchdog)) {
        req.raw.socket.destroy();
        return false;
      }
      return true;
    };
    app.get("/eth/v1/node/health", async (req, reply) => {
      if (!gate(req, true)) return reply;
      return reply.code(node!.state.health).send();
    });
    app.get("/eth/v1/node/syncing", async (req, reply) => {
      if (!gate(req, true)) return reply;
      const s = node!.state;
      return {
        data: {
          head_slot: String(chain.currentSlot() - s.syncDistance),
          sync_distance: String(s.syncDistance),
          is_syncing: s.isSyncing,
          is_optimistic: false,
          el_offline: s.elOffline,
        },
      };
    });
    app.get("/eth/v1/node/peer_count", async (req, reply) => {
      if (!gate(req, true)) return reply;
      return { data: { disconnected: "3", connecting: "0", connected: String(node!.state.peers), disconnecting: "0" } };
    });
    app.get("/eth/v1/beacon/genesis", async (req, reply) => {
      if (!gate(req, false)) return reply;
      return { data: { genesis_time: String(chain.genesisTime), genesis_validators_root: chain.gvr, genesis_fork_version: "0x00000001" } };
    });
    app.post<{ Params: { epoch: string }; Body: unknown }>("/eth/v1/validator/liveness/:epoch", async (req, reply) => {
      if (!gate(req, false)) return reply;
      const epoch = Number(req.params.epoch);
      if (!Array.isArray(req.body)) return reply.code(400).send({ code: 400, message: "body must be an array of indices" });
      return { data: (req.body as string[]).map((index) => ({ index: String(index), is_live: chain.isLive(String(index), epoch) })) };
    });
    // Publishing: the validator client hands signed messages to its beacon node; they become "live".
    app.post<{ Body: Array<{ index: number; epoch: number }> }>("/eth/v1/beacon/pool/attestations", async (req, reply) => {
      if (!gate(req, false)) return reply;
      for (const a of req.body) chain.markLive(a.index, a.epoch);
      node!.published.attestations += req.body.length;
      return reply.code(200).send();
    });
    app.post<{ Body: Array<{ index: number; epoch: number }> }>("/eth/v1/beacon/pool/sync_committees", async (req, reply) => {
      if (!gate(req, false)) return reply;
      for (const a of req.body) chain.markLive(a.index, a.epoch);
      node!.published.syncMessages += req.body.length;
      return reply.code(200).send();
    });
    app.post<{ Body: { index: number; epoch: number } }>("/eth/v2/beacon/blocks", async (req, reply) => {
      if (!gate(req, false)) return reply;
      chain.markLive(req.body.index, req.body.epoch);
      node!.published.blocks++;
      return reply.code(200).send();
    });
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    node = new SimBeaconNode(name, app, url);
    return node;
  }

  set(patch: Partial<SimBeaconState>): void {
    Object.assign(this.state, patch);
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}
