/**
 * A connection budget per listener that a slowloris flood cannot use to lock legitimate clients out.
 *
 * A plain cap (server.maxConnections) refuses the newest connection, so an attacker who holds the cap's worth of
 * trickling connections keeps every validator client out. Here a new connection over the budget evicts instead one
 * that has never completed a request (a trickler never does), the oldest first; only when there is none, the
 * connection idle the longest since its last reply. So a validator client's keep-alive connection, which has
 * completed requests, outlives any number of fresh trickling connections, and a new client gets in. A connection
 * whose request is complete and being answered is never evicted (its reply may carry a recorded signature); if every
 * connection is busy, the new one is closed. The header, body and idle timeouts (app.ts) close tricklers anyway;
 * the budget bounds the file descriptors they can hold meanwhile.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";

interface ConnectionState {
  /** When the connection opened or last finished a reply: how long it has gone without a complete request. */
  since: number;
  /** A complete request is being handled. */
  busy: boolean;
  /** Requests answered on it: a connection that has completed one is a client's, not a trickler's. */
  completed: number;
}

export type EvictionReason = "evicted" | "refused";

/**
 * Tracks every connection of `app`'s server (raw TCP sockets, TLS handshakes included) and keeps at most `budget`.
 * `onShed` is told of each connection closed for the budget.
 */
export function guardConnections(app: FastifyInstance, budget: number, onShed: (reason: EvictionReason) => void): void {
  const states = new Map<Socket, ConnectionState>();
  const server = app.server as Server;

  server.on("connection", (socket: Socket) => {
    states.set(socket, { since: performance.now(), busy: false, completed: 0 });
    socket.once("close", () => states.delete(socket));
    if (states.size <= budget) return;
    let victim: Socket | undefined;
    let best: ConnectionState | undefined;
    for (const [s, state] of states) {
      if (state.busy || s === socket) continue;
      if (!best || evictFirst(state, best)) {
        best = state;
        victim = s;
      }
    }
    if (victim) {
      states.delete(victim);
      victim.destroy();
      onShed("evicted");
    } else {
      states.delete(socket);
      socket.destroy();
      onShed("refused");
    }
  });

  // preHandler runs once the body is fully read: only then is a request complete (a trickled body is not).
  app.addHook("preHandler", (request, _reply, done) => {
    const state = stateOf(states, request.raw.socket);
    if (state) state.busy = true;
    done();
  });
  app.addHook("onResponse", (request, _reply, done) => {
    const state = stateOf(states, request.raw.socket);
    if (state) {
      state.busy = false;
      state.completed++;
      state.since = performance.now();
    }
    done();
  });
}

/** Whether `a` should go before `b`: never-completed before proven, then the older. */
function evictFirst(a: ConnectionState, b: ConnectionState): boolean {
  if ((a.completed === 0) !== (b.completed === 0)) return a.completed === 0;
  return a.since < b.since;
}

/** The state of the TCP socket under `socket` (for TLS, the request's socket wraps the raw one as `_parent`). */
function stateOf(states: Map<Socket, ConnectionState>, socket: Socket): ConnectionState | undefined {
  return states.get(socket) ?? states.get((socket as Socket & { _parent?: Socket })._parent as Socket);
}
