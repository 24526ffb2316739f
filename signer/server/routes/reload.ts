/**
 * POST /reload and GET /reload, as Web3Signer has them, on the main listener only. No token, like Web3Signer: a
 * reload only makes the signer agree with its own key store, which a caller cannot choose; a web page cannot
 * trigger it (the HTTP guard refuses cross-origin and foreign-Host requests before routing), and only one runs at
 * a time (409 meanwhile).
 */
import type { FastifyInstance } from "fastify";
import { RELOAD_ACCEPTED, type KeyReload } from "../reload.js";

export function registerReloadRoutes(app: FastifyInstance, reload: KeyReload): void {
  app.post("/reload", async (_request, reply) => {
    if (!reload.start("http")) return reply.code(409).send({ code: "RELOAD_RUNNING", message: "a key reload is already running; GET /reload shows its state" });
    return reply.code(202).send(RELOAD_ACCEPTED);
  });
  app.get("/reload", async () => reload.view());
}
