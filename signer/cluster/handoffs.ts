/**
 * Connections node:cluster's primary handed to a worker that died before taking them.
 *
 * In round-robin mode the primary accepts each connection and sends its socket to the next free worker, keeping
 * its own copy open until the worker acknowledges it. A worker that dies between the hand-off and the
 * acknowledgement (a SIGKILL or crash, or simply before the primary has noticed the death: the next connection
 * still goes to it) never answers, and node:cluster neither closes the primary's copy nor gives it to another
 * worker (nodejs/node-v0.x-archive#7006, nodejs/node#21746): the client waits, with no answer and no error, until
 * its own timeout, and the primary leaks the socket. Closing those copies when the worker has exited tells the
 * client at once that its connection is gone, so it retries on a fresh one (which a live worker gets).
 *
 * This reads node:cluster's internal messages (`newconn` out with a `seq`, `ack` back with it), which Node does
 * not document: if they change, nothing is tracked and the behaviour is node:cluster's own again.
 * test/signer/workers.test.ts fails then.
 */
import type { Worker } from "node:cluster";

interface ClusterMessage {
  cmd?: unknown;
  act?: unknown;
  seq?: unknown;
  ack?: unknown;
}

interface ClosableHandle {
  close(): void;
}

const isClusterMessage = (m: unknown): m is ClusterMessage => typeof m === "object" && m !== null && (m as ClusterMessage).cmd === "NODE_CLUSTER";

/**
 * Starts tracking the connections handed to `worker` (call right after cluster.fork). The returned function, called
 * once the worker has exited, closes those it never acknowledged and says how many there were.
 */
export function trackHandoffs(worker: Worker): () => number {
  const child = worker.process;
  const unacknowledged = new Map<number, ClosableHandle>();
  const send = child.send;
  // biome-ignore lint/suspicious/noExplicitAny: child_process.send's overloads, passed on unchanged
  child.send = function (this: typeof child, message: unknown, ...rest: any[]): boolean {
    const handle = rest[0] as Partial<ClosableHandle> | undefined;
    if (isClusterMessage(message) && message.act === "newconn" && typeof message.seq === "number" && typeof handle?.close === "function") {
      unacknowledged.set(message.seq, handle as ClosableHandle);
    }
    return send.call(this, message as never, ...(rest as []));
  } as typeof child.send;
  // Accepted or refused (then the primary gives it to another worker), the worker answered: it is not ours to close.
  child.on("internalMessage", (m: unknown) => {
    if (isClusterMessage(m) && typeof m.ack === "number") unacknowledged.delete(m.ack);
  });
  return () => {
    const lost = [...unacknowledged.values()];
    unacknowledged.clear();
    for (const handle of lost) handle.close();
    return lost.length;
  };
}
