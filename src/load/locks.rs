//! Waiting for locks other sessions hold: how long a file's load waits for one, and who holds
//! the lock it gave up on (for the log and `/healthz`). Reads `pg_locks` only; writes nothing.

use std::time::Duration;

use tokio_postgres::Client;

/// How long a statement of a file's load waits for one lock before the load gives up and the
/// file is retried with backoff. A load normally waits only for another load's commit of
/// shared event ids (well under a second per chunk); a lock held longer is a person or a job
/// (`LOCK TABLE`, `ALTER TABLE`, `CREATE INDEX`, an open transaction in psql), and without a
/// limit the watcher would hang behind it without a word. 5 s rides out a short maintenance
/// statement and still says within seconds that loading is blocked.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// A lock on a shopstream table that blocks writes, granted to another session: the most
/// exclusive first. Row and transaction locks are not listed (they have no table to name).
const HOLDERS: &str = "
SELECT n.nspname || '.' || c.relname, l.mode, l.pid
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'streaming' AND c.relkind IN ('r', 'p') AND l.granted
  AND l.pid <> pg_backend_pid()
  AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
ORDER BY l.mode = 'AccessExclusiveLock' DESC, c.relname
LIMIT 1";

/// Who holds the lock a load gave up on, as a phrase for people: "a lock on streaming.events
/// (AccessExclusiveLock, pid 4711)". `None` when no table lock is held any more (it was
/// released meanwhile, or the wait was for a row of a concurrent load).
pub async fn lock_holder(client: &Client) -> Option<String> {
    let row = client.query_opt(HOLDERS, &[]).await.ok()??;
    let (table, mode, pid): (String, String, i32) = (row.get(0), row.get(1), row.get(2));
    Some(format!("a lock on {table} ({mode}, pid {pid})"))
}
