/**
 * Requests over the cluster channel that wait for the answer carrying their id: the primary asks a worker (its
 * metrics, its client views, to apply a key change), a worker asks the primary (the group's metrics and views, a
 * key change for its siblings). One class for both ends: an answer resolves its request; a timeout, or the other
 * end going away, rejects it.
 */
export class PendingRequests<Answer extends { id: number }> {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (answer: Answer) => void; reject: (err: Error) => void }>();

  /** Sends what `send(id)` builds; resolves with the answer of that id, or rejects after `timeoutMs` (if given). */
  ask(send: (id: number) => void, timeout?: { ms: number; message: string }): Promise<Answer> {
    const id = this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      const timer = timeout === undefined ? undefined : setTimeout(() => settle(() => reject(new Error(timeout.message))), timeout.ms);
      const settle = (then: () => void) => {
        this.waiting.delete(id);
        clearTimeout(timer);
        then();
      };
      this.waiting.set(id, { resolve: (answer) => settle(() => resolve(answer)), reject: (err) => settle(() => reject(err)) });
      try {
        send(id);
      } catch (err) {
        settle(() => reject(err as Error));
      }
    });
  }

  /** An answer: resolves the request of its id. One nobody waits for any more (it timed out) is dropped. */
  answer(answer: Answer): void {
    this.waiting.get(answer.id)?.resolve(answer);
  }

  /** The other end is gone: every request still waiting is rejected with `err`. */
  failAll(err: Error): void {
    for (const w of [...this.waiting.values()]) w.reject(err);
  }
}
