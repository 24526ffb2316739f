// A small in-memory signer admin API that follows signer/docs/admin-api.md, for unit tests of the failover
// executor that need faults the real signer does not produce on demand: unreachable, stuck in-flight
// requests, a fence that does not stick, a newer generation appearing mid-failover. The scenario tests use
// the real signer.
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import {
  ADMIN_ROUTES,
  FENCE_ACTIONS,
  type AdminErrorBody,
  type AdminErrorCode,
  type ClientsResponse,
  type ClientView,
  type FenceRequest,
  type FencingResponse,
  type SignaturesResponse,
  type StaleGenerationBody,
} from "../../../admin-api/index.js";

/** A client as the admin API's contract describes it, minus the per-key history the fake does not keep. */
export type FakeClient = Omit<ClientView, "lastSigned">;

export class FakeSigner {
  generation = 0;
  /** The decision holding `generation` (admin-api.md). */
  decision: string | null = null;
  readonly clients = new Map<string, FakeClient>();
  /** Every admin route destroys the connection. */
  unreachable = false;
  /** disable answers 200 but changes nothing (a broken signer): the read-back must catch it. */
  ignoreDisable = false;
  readonly calls: string[] = [];
  /** Called before a disable/enable is applied (tests move the generation on here). */
  onCall: (action: "disable" | "enable", id: string, generation: number) => void = () => {};
  private constructor(
    private readonly app: FastifyInstance,
    readonly url: string,
    readonly token: string,
  ) {}

  static async start(token: string, clientIds: string[]): Promise<FakeSigner> {
    const app = Fastify({ logger: false });
    let fake: FakeSigner | undefined;
    const fail = (reply: FastifyReply, status: number, code: AdminErrorCode, extra: Partial<Pick<StaleGenerationBody, "reason" | "currentGeneration">> = {}) =>
      reply.code(status).send({ code, message: code, ...extra } satisfies AdminErrorBody);
    app.addHook("onRequest", async (req, reply) => {
      if (fake!.unreachable) {
        req.raw.socket.destroy();
        return reply;
      }
      if (req.headers.authorization !== `Bearer ${token}`) return fail(reply, 401, "UNAUTHENTICATED");
    });
    app.get(ADMIN_ROUTES.fencing, async (): Promise<FencingResponse> => ({ generation: fake!.generation }));
    app.get(ADMIN_ROUTES.clients, async (): Promise<ClientsResponse> => ({ generation: fake!.generation, clients: [...fake!.clients.values()].map(view) }));
    app.get<{ Params: { id: string } }>(ADMIN_ROUTES.client, async (req, reply) => {
      const c = fake!.clients.get(req.params.id);
      return c ? view(c) : fail(reply, 404, "UNKNOWN_CLIENT");
    });
    for (const action of FENCE_ACTIONS) {
      app.post<{ Params: { id: string }; Body: FenceRequest }>(ADMIN_ROUTES[action], async (req, reply) => {
        const c = fake!.clients.get(req.params.id);
        if (!c) return fail(reply, 404, "UNKNOWN_CLIENT");
        const g = req.body.generation;
        fake!.calls.push(`${action} ${c.id} ${g}`);
        fake!.onCall(action, c.id, g);
        if (g < fake!.generation) return fail(reply, 409, "STALE_GENERATION", { currentGeneration: fake!.generation, reason: "STALE" });
        // As the real signer: at the current generation only the decision that holds it may retry.
        const held = g === fake!.generation ? fake!.decision : null;
        if (held && req.body.decision && held !== req.body.decision) {
          return fail(reply, 409, "STALE_GENERATION", { currentGeneration: fake!.generation, reason: "GENERATION_TAKEN" });
        }
        fake!.decision = held ?? req.body.decision ?? null;
        fake!.generation = g;
        if (action === "disable" && fake!.ignoreDisable) return view(c);
        c.enabled = action === "enable";
        c.changedAtGeneration = g;
        return view(c);
      });
    }
    app.get(ADMIN_ROUTES.signatures, async (): Promise<SignaturesResponse> => ({ signatures: [], next: 0 }));
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    fake = new FakeSigner(app, url, token);
    for (const id of clientIds) {
      fake.clients.set(id, { id, enabled: true, changedAtGeneration: 0, inFlight: 0, lastRequestAt: null, lastSignedAt: null, signed: 0, refused: 0 });
    }
    return fake;
  }

  client(id: string): FakeClient {
    return this.clients.get(id)!;
  }

  /** The client "signs" now (what VERIFYING waits for). */
  sign(id: string): void {
    const c = this.client(id);
    if (!c.enabled) return;
    const now = new Date().toISOString();
    c.lastRequestAt = now;
    c.lastSignedAt = now;
    c.signed++;
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}

function view(c: FakeClient): ClientView {
  return { ...c, lastSigned: [] };
}
