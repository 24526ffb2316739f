/**
 * Every Vigil transaction that judges or decides runs in READ COMMITTED, named explicitly so that a server, database
 * or role whose default_transaction_isolation is REPEATABLE READ or SERIALIZABLE cannot change what it sees. The
 * argument for "two instances never both record" (README.md, "Locking order") needs each statement after a lock
 * wait to see what the lock holder committed; in REPEATABLE READ the whole transaction keeps the snapshot of its
 * first statement, taken before the wait, and two instances could both record a double vote.
 */
export const BEGIN_READ_COMMITTED = "BEGIN ISOLATION LEVEL READ COMMITTED";
/** The mode of a write transaction. */
export const READ_COMMITTED_WRITE = "ISOLATION LEVEL READ COMMITTED, READ WRITE";
