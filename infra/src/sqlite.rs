//! The embedded engine: one SQLite file in WAL mode with `synchronous=FULL`, so an
//! acknowledged write survives a crash of the process (and of the machine).
//!
//! Its stream is the `outbox` table: every put of an item that carries events appends the
//! item's image there in the same SQL transaction, and the outbox consumer reads and
//! acknowledges entries in order ([`SqliteStore::outbox_read`], [`SqliteStore::outbox_ack`]).
//!
//! Writes are group-committed: writes that arrive while a commit is under way wait for it,
//! then go in together as one SQL transaction and one fsync, each in a savepoint of its own
//! (its conditions checked against the state the writes before it left; a failed one leaves
//! no trace and fails only its own caller). Each is acknowledged only after that commit.

use crate::clock::Clock;
use crate::memo::Changes;
use crate::port::{check_write, Condition, Cursor, Index, Item, Key, Page, Query, SkCond, Store, StoreError, WriteOp};
use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub struct SqliteStore {
    /// The one writer: writes are serialised, and run on the blocking pool (they fsync).
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections: WAL lets each read the last committed state beside the writer.
    /// Reads are point lookups and short range scans served from the page cache in
    /// microseconds, so they run inline on the caller's task, without a thread hop.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    clock: Arc<dyn Clock>,
    /// Writes waiting for the next group commit.
    group: Arc<Group>,
}

/// One write waiting for a group commit, and where its outcome goes.
type Pending = (Vec<WriteOp>, oneshot::Sender<Result<(), StoreError>>);

#[derive(Default)]
struct Group {
    queue: Mutex<Queue>,
    commits: AtomicU64,
    writes: AtomicU64,
    /// Wakes the checkpointer (every [`CHECKPOINT_EVERY`] commits).
    checkpoint: Option<Checkpointer>,
    /// Told of every item write, before and after its commit ([`SqliteStore::tell`]).
    changes: std::sync::OnceLock<Arc<dyn Changes>>,
}

/// The checkpointer's wake-up line and thread. Dropped with the store: the line closes, the
/// thread ends and is joined, so its connection is closed (and the log tidied) before a
/// reopen of the same file can begin.
struct Checkpointer {
    wake: Option<SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How many commits go by between two background checkpoints. Each checkpoint copies every
/// page the log holds once, however often those commits rewrote it, so a longer interval
/// copies fewer pages per write; the writer does not wait for it (BENCHMARKS.md, "Local load").
const CHECKPOINT_EVERY: u64 = 250;

/// The log's length, in pages, at which the writer checkpoints inline (SQLite's automatic
/// checkpoint). Under steady writes the background checkpoints copy nearly all of the log
/// but seldom all of it at the moment a write begins, which is when SQLite restarts the log
/// from its start; so the log grows to this length, and then the writer's own checkpoint
/// copies the small remainder (what came since the last background one) and the log
/// restarts. It bounds the log (about 80 MB).
const WAL_BACKSTOP_PAGES: i64 = 20_000;

/// The log file is cut back to this many bytes once a checkpoint has emptied it.
const WAL_KEEP_BYTES: i64 = 64 * 1024 * 1024;

/// The background checkpointer: its own connection, one PASSIVE checkpoint each time the
/// committer wakes it (never waiting for the writer or a reader; what a reader still needs
/// stays in the log for the next one). It stops when the store is dropped.
fn checkpointer(path: &Path) -> Result<Checkpointer, StoreError> {
    let conn = Connection::open(path).map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "checkpoint failed; the writer's own checkpoint bounds the log");
                }
            }
        })
        .map_err(err)?;
    Ok(Checkpointer { wake: Some(wake), thread: Some(thread) })
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// A committer is running (on the blocking pool) and will take what is pending.
    running: bool,
}

/// The most writes one group commit takes: bounds how long the first of them waits.
const GROUP_MAX: usize = 256;

/// How many transactions the writer committed and how many API writes they carried (the
/// ratio is the group-commit factor), for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitStats {
    pub commits: u64,
    pub writes: u64,
}

/// How many read connections a store keeps (each has its own page cache).
const READERS: usize = 4;

/// An item's columns, in [`row_item`]'s order (a macro, so statements can be built from it at
/// compile time and prepared once per connection).
macro_rules! columns {
    () => {
        "pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, version, doc, events, sum"
    };
}
const COLUMNS: &str = columns!();
/// The live item of a key: the one statement a get and every condition check run.
const LIVE: &str =
    concat!("SELECT ", columns!(), " FROM items WHERE pk = ?1 AND sk = ?2 AND (ttl IS NULL OR ttl > ?3)");
const PUT: &str =
    "INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, version, doc, events, sum) \
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// The items table's columns. A rowid table, its key `(pk, sk)` a unique index beside it:
/// rows land in insertion order, so a group commit's new rows share the table's last pages,
/// and only the small key entries go where random ids put them. (Keyed by `(pk, sk)` itself,
/// `WITHOUT ROWID`, every row of a kilobyte or more went to a random leaf with an overflow
/// page and copies in interior pages; SQLite advises that layout only for rows under a
/// twentieth of a page. A create's page writes, the log's and the checkpoint's, went from
/// 19.5 to 13.7 and its page reads from 21 to 5: BENCHMARKS.md, "Local load".)
const ITEMS: &str = "pk TEXT NOT NULL, sk TEXT NOT NULL,
    gsi1pk TEXT, gsi1sk TEXT, gsi2pk TEXT, gsi2sk TEXT,
    ttl INTEGER, version INTEGER NOT NULL, doc TEXT NOT NULL,
    events TEXT, sum TEXT,
    PRIMARY KEY (pk, sk)";
const INDEXES: &str = "CREATE INDEX IF NOT EXISTS gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
    CREATE INDEX IF NOT EXISTS gsi2 ON items (gsi2pk, gsi2sk, pk, sk) WHERE gsi2pk IS NOT NULL;";

/// Files from before the rowid layout ([`ITEMS`]): the items move to it, in one transaction
/// that checks the layout first (two processes opening an old file: the second finds it
/// moved). The old table's pages stay in the file as free pages, reused by later writes.
fn rowid_layout(conn: &Connection) -> Result<(), StoreError> {
    let old = |c: &Connection| -> Result<bool, StoreError> {
        c.query_row("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = 'items'", [], |r| r.get(0))
            .map_err(err)
    };
    if !old(conn)? {
        return Ok(());
    }
    step(conn, "BEGIN IMMEDIATE")?;
    let moved = (|| {
        if old(conn)? {
            conn.execute_batch(&format!(
                "CREATE TABLE items_rowid ({ITEMS});
                 INSERT INTO items_rowid (pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, version, doc, events, sum)
                    SELECT pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, version, doc, events, sum FROM items;
                 DROP TABLE items;
                 ALTER TABLE items_rowid RENAME TO items;
                 {INDEXES}"
            ))
            .map_err(err)?;
        }
        step(conn, "COMMIT")
    })();
    if moved.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    moved
}

/// What an index query returns: keys, `ttl` and the summary, as DynamoDB's projection does.
const PROJECTED: &str = "pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl, 0, '', NULL, sum";

/// One entry of the embedded stream: the image of an item put with events, or the last
/// image of an order header its TTL removed (`removed`), as DynamoDB's stream has them.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub seq: i64,
    pub item: Item,
    pub removed: bool,
}

fn err(e: impl Into<crate::port::BoxError>) -> StoreError {
    StoreError::Unavailable(e.into())
}

fn row_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        pk: r.get(0)?,
        sk: r.get(1)?,
        gsi1pk: r.get(2)?,
        gsi1sk: r.get(3)?,
        gsi2pk: r.get(4)?,
        gsi2sk: r.get(5)?,
        ttl: r.get(6)?,
        version: u64::try_from(r.get::<_, i64>(7)?).unwrap_or_default(),
        doc: r.get(8)?,
        events: r.get(9)?,
        summary: r.get(10)?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the store file `path`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        // Checkpoints run on their own thread ([`checkpointer`]); the writer's own, inline,
        // only bounds the log should that thread fall behind.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES).map_err(err)?;
        conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES).map_err(err)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS items ({ITEMS});
             {INDEXES}
             CREATE TABLE IF NOT EXISTS outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL);"
        ))
        .map_err(err)?;
        // Files from before riding events and summaries: add the columns (NULL = none).
        let has_events: bool = conn
            .query_row("SELECT COUNT(*) FROM pragma_table_info('items') WHERE name = 'events'", [], |r| r.get(0))
            .map_err(err)?;
        if !has_events {
            conn.execute_batch("ALTER TABLE items ADD COLUMN events TEXT; ALTER TABLE items ADD COLUMN sum TEXT;")
                .map_err(err)?;
        }
        // Files from before removals reached the outbox.
        let has_removed: bool = conn
            .query_row("SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'removed'", [], |r| r.get(0))
            .map_err(err)?;
        if !has_removed {
            conn.execute_batch("ALTER TABLE outbox ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;").map_err(err)?;
        }
        rowid_layout(&conn)?;
        let readers = (0..READERS)
            .map(|_| {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                Connection::open_with_flags(path, flags).map(Mutex::new).map_err(err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let group = Group { checkpoint: Some(checkpointer(path)?), ..Group::default() };
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers,
            next_reader: AtomicUsize::new(0),
            clock,
            group: Arc::new(group),
        })
    }

    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            commits: self.group.commits.load(Ordering::Relaxed),
            writes: self.group.writes.load(Ordering::Relaxed),
        }
    }

    /// Tells `changes` of every item write from now on (the sweeper's removals included), by
    /// partition, before it begins and after it ends, and before its writer is answered (the
    /// memo of rendered reads, [`crate::memo`]). One listener per store: false, and nothing
    /// changed, when one was already told.
    #[must_use]
    pub fn tell(&self, changes: Arc<dyn Changes>) -> bool {
        self.group.changes.set(changes).is_ok()
    }

    /// Holds the writer until the guard drops: writes queue meanwhile and then share one
    /// commit (tests make a group deterministic with it).
    #[doc(hidden)]
    pub fn hold_writer(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::unavailable("store lock poisoned"))
    }

    /// Queues `ops` for the next group commit and waits for its outcome.
    async fn write_grouped(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.group.queue.lock().map_err(|_| StoreError::unavailable("store lock poisoned"))?;
            q.pending.push((ops, tx));
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let (conn, group, clock) = (self.conn.clone(), self.group.clone(), self.clock.clone());
            tokio::task::spawn_blocking(move || commit_pending(&conn, &group, clock.as_ref()));
        }
        rx.await.map_err(|_| StoreError::unavailable("the write's commit was abandoned"))?
    }

    /// Runs a read on a free read connection (or waits for one), inline.
    fn read<T>(&self, f: impl FnOnce(&Connection, i64) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let now = self.clock.epoch();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let pick = |i: usize| self.readers.get(start.wrapping_add(i) % READERS);
        for i in 0..READERS {
            if let Some(Ok(guard)) = pick(i).map(Mutex::try_lock) {
                return f(&guard, now);
            }
        }
        let guard = pick(0)
            .ok_or_else(|| StoreError::unavailable("no read connection"))?
            .lock()
            .map_err(|_| StoreError::unavailable("store lock poisoned"))?;
        f(&guard, now)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, i64) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let now = self.clock.epoch();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::unavailable("store lock poisoned"))?;
            f(&mut guard, now)
        })
        .await
        .map_err(err)?
    }
}

/// The committer: takes everything pending, commits it as one transaction, answers each
/// write, and repeats until nothing is pending. It takes the writer first and the batch
/// second, so writes that arrive while another commit holds the writer join the next one.
fn commit_pending(conn: &Mutex<Connection>, group: &Group, clock: &dyn Clock) {
    loop {
        let mut guard = match conn.lock() {
            Ok(g) => g,
            // Dropping the senders answers every pending write "unavailable".
            Err(_) => return stop(group),
        };
        let batch = {
            let Ok(mut q) = group.queue.lock() else { return };
            if q.pending.is_empty() {
                q.running = false;
                return;
            }
            let take = q.pending.len().min(GROUP_MAX);
            q.pending.drain(..take).collect::<Vec<_>>()
        };
        let (writes, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let results = told(group, &writes, || commit_each(&mut guard, &writes, clock.epoch()));
        drop(guard);
        let commits = group.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if commits.is_multiple_of(CHECKPOINT_EVERY) {
            if let Some(wake) = group.checkpoint.as_ref().and_then(|c| c.wake.as_ref()) {
                // Full means a wake-up is already pending: that checkpoint takes these too.
                let _ = wake.try_send(());
            }
        }
        group.writes.fetch_add(u64::try_from(writes.len()).unwrap_or(u64::MAX), Ordering::Relaxed);
        for (answer, result) in answers.into_iter().zip(results) {
            // The caller may have gone (its request was dropped): the write stands regardless.
            let _ = answer.send(result);
        }
    }
}

/// Runs `commit` of `writes` with the store's listener told of every partition they write,
/// before and after.
fn told<R>(group: &Group, writes: &[Vec<WriteOp>], commit: impl FnOnce() -> R) -> R {
    if group.changes.get().is_none() {
        return commit();
    }
    let mut pks: Vec<&str> = writes
        .iter()
        .flatten()
        .filter_map(|op| match op {
            WriteOp::Put { item, .. } => Some(item.pk.as_str()),
            WriteOp::Delete { key, .. } => Some(key.pk.as_str()),
            WriteOp::Check { .. } => None,
        })
        .collect();
    pks.sort_unstable();
    pks.dedup();
    telling(group, &pks, commit)
}

/// Runs `write` with the store's listener (if any) told of partitions `pks` before and after.
fn telling<R>(group: &Group, pks: &[&str], write: impl FnOnce() -> R) -> R {
    let Some(changes) = group.changes.get() else { return write() };
    changes.writing(pks);
    let out = write();
    changes.written(pks);
    out
}

/// The committer cannot go on: nothing pending will be committed.
fn stop(group: &Group) {
    if let Ok(mut q) = group.queue.lock() {
        q.pending.clear();
        q.running = false;
    }
}

/// `writes` in one transaction, each in a savepoint of its own: a failed one leaves no
/// trace and the rest go on. When the transaction itself fails, nothing was committed and
/// every write fails the same way.
fn commit_each(c: &mut Connection, writes: &[Vec<WriteOp>], now: i64) -> Vec<Result<(), StoreError>> {
    let outcome = (|| {
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let mut results = Vec::with_capacity(writes.len());
        for ops in writes {
            // Each write in a savepoint of its own: a failed condition (or any failure of its
            // statements) undoes that write alone. A savepoint that cannot be taken, released
            // or rolled back fails the whole group, which then rolls back.
            let result = match check_write(ops) {
                Err(e) => Err(e),
                Ok(()) => {
                    step(&tx, "SAVEPOINT w")?;
                    match apply(&tx, ops, now) {
                        Ok(()) => {
                            step(&tx, "RELEASE w")?;
                            Ok(())
                        }
                        Err(e) => {
                            step(&tx, "ROLLBACK TO w")?;
                            step(&tx, "RELEASE w")?;
                            Err(e)
                        }
                    }
                }
            };
            results.push(result);
        }
        tx.commit().map_err(err)?;
        Ok::<_, StoreError>(results)
    })();
    match outcome {
        Ok(results) => results,
        Err(e) => {
            let why = e.to_string();
            writes.iter().map(|_| Err(StoreError::unavailable(why.clone()))).collect()
        }
    }
}

fn live(conn: &Connection, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
    conn.prepare_cached(LIVE)
        .and_then(|mut stmt| stmt.query_row(params![key.pk, key.sk, now], row_item))
        .optional()
        .map_err(err)
}

/// Runs one of the group commit's fixed statements (savepoints), prepared once per connection:
/// rusqlite's own savepoints parse their SQL on every use, which showed in a create's profile.
fn step(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql).and_then(|mut stmt| stmt.execute([])).map(drop).map_err(err)
}

fn holds(cond: Condition, current: Option<&Item>) -> bool {
    match (cond, current) {
        (Condition::NotExists, c) => c.is_none(),
        (Condition::Exists, c) => c.is_some(),
        (Condition::VersionIs(v), Some(c)) => c.version == v,
        (Condition::VersionIs(_), None) => false,
    }
}

impl SqliteStore {
    /// The oldest unacknowledged outbox entries, at most `limit`, oldest first.
    pub async fn outbox_read(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(move |c, _| {
            let mut stmt =
                c.prepare_cached("SELECT seq, image, removed FROM outbox ORDER BY seq LIMIT ?1").map_err(err)?;
            let rows = stmt
                .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?))
                })
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            rows.into_iter()
                .map(|(seq, image, removed)| {
                    let item = serde_json::from_str(&image).map_err(|e| StoreError::Corrupt(e.into()))?;
                    Ok(OutboxEntry { seq, item, removed })
                })
                .collect()
        })
    }

    /// Physically removes every item whose `ttl` has passed (reads already treat them as
    /// absent), as DynamoDB's TTL does; answers how many went. The listener
    /// ([`SqliteStore::tell`]) is told of their partitions, as of any write. The last image of every
    /// removed order header joins the outbox in the same transaction (DynamoDB's stream has a
    /// REMOVE record for it), so the order's expiry reaches subscribers and its remaining
    /// items are cleaned up.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let group = self.group.clone();
        self.run(move |c, now| {
            let doomed: Vec<String> = {
                let mut stmt = c
                    .prepare_cached("SELECT DISTINCT pk FROM items WHERE ttl IS NOT NULL AND ttl <= ?1")
                    .map_err(err)?;
                let rows = stmt.query_map(params![now], |r| r.get(0)).map_err(err)?;
                rows.collect::<Result<_, _>>().map_err(err)?
            };
            let pks: Vec<&str> = doomed.iter().map(String::as_str).collect();
            telling(&group, &pks, || sweep_expired(c, now))
        })
        .await
    }

    /// Acknowledges every entry up to and including `seq`: they are done with.
    pub async fn outbox_ack(&self, seq: i64) -> Result<(), StoreError> {
        self.run(move |c, _| c.execute("DELETE FROM outbox WHERE seq <= ?1", params![seq]).map(drop).map_err(err)).await
    }
}

/// The sweep's transaction: every expired item removed, each removed order header's last
/// image in the outbox.
fn sweep_expired(c: &mut Connection, now: i64) -> Result<usize, StoreError> {
    let tx = c.transaction().map_err(err)?;
    let headers = {
        let sql = format!("SELECT {COLUMNS} FROM items WHERE ttl IS NOT NULL AND ttl <= ?1 AND sk = ?2");
        let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
        let rows = stmt.query_map(params![now, domain::table::ORDER_SK], row_item).map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)?
    };
    for h in &headers {
        let image = serde_json::to_string(h).map_err(err)?;
        tx.execute("INSERT INTO outbox (image, removed) VALUES (?1, 1)", params![image]).map_err(err)?;
    }
    let n = tx.execute("DELETE FROM items WHERE ttl IS NOT NULL AND ttl <= ?1", params![now]).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(n)
}

/// Checks every condition of `ops`, then applies them, inside the caller's transaction.
fn apply(conn: &Connection, ops: &[WriteOp], now: i64) -> Result<(), StoreError> {
    for (index, op) in ops.iter().enumerate() {
        let cond = match op {
            WriteOp::Put { cond, .. } | WriteOp::Delete { cond, .. } => *cond,
            WriteOp::Check { cond, .. } => Some(*cond),
        };
        if let Some(cond) = cond {
            let current = live(conn, &op.key(), now)?;
            if !holds(cond, current.as_ref()) {
                return Err(StoreError::ConditionFailed { index, current: current.map(Box::new) });
            }
        }
    }
    for op in ops {
        match op {
            WriteOp::Put { item: i, .. } => {
                conn.prepare_cached(PUT)
                    .map_err(err)?
                    .execute(params![
                        i.pk,
                        i.sk,
                        i.gsi1pk,
                        i.gsi1sk,
                        i.gsi2pk,
                        i.gsi2sk,
                        i.ttl,
                        i64::try_from(i.version).unwrap_or(i64::MAX),
                        i.doc,
                        i.events,
                        i.summary
                    ])
                    .map_err(err)?;
                if i.events.is_some() {
                    let image = serde_json::to_string(i).map_err(err)?;
                    conn.prepare_cached("INSERT INTO outbox (image) VALUES (?1)")
                        .and_then(|mut stmt| stmt.execute(params![image]))
                        .map_err(err)?;
                }
            }
            WriteOp::Delete { key, .. } => {
                conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
                    .and_then(|mut stmt| stmt.execute(params![key.pk, key.sk]))
                    .map_err(err)?;
            }
            WriteOp::Check { .. } => {}
        }
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.read(|c, now| live(c, key, now))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let mut keys: Vec<&Key> = keys.iter().collect();
        keys.sort();
        keys.dedup();
        self.read(|c, now| {
            let mut found = Vec::with_capacity(keys.len());
            for k in keys {
                found.extend(live(c, k, now)?);
            }
            Ok(found)
        })
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        self.read(|c, now| {
            let (pcol, scol) = match q.index {
                None => ("pk", "sk"),
                Some(Index::Gsi1) => ("gsi1pk", "gsi1sk"),
                Some(Index::Gsi2) => ("gsi2pk", "gsi2sk"),
            };
            let mut args: Vec<rusqlite::types::Value> = vec![q.pk.clone().into(), now.into()];
            let cols = if q.index.is_some() { PROJECTED } else { COLUMNS };
            let mut sql = format!("SELECT {cols} FROM items WHERE {pcol} = ?1 AND (ttl IS NULL OR ttl > ?2)");
            let mut bind = |sql: &mut String, expr: &str, v: &str| {
                args.push(v.to_owned().into());
                sql.push_str(&format!(" AND {scol} {expr} ?{}", args.len()));
            };
            match &q.sk {
                SkCond::Any => {}
                SkCond::Eq(v) => bind(&mut sql, "=", v),
                SkCond::Lt(v) => bind(&mut sql, "<", v),
                SkCond::Le(v) => bind(&mut sql, "<=", v),
                SkCond::Gt(v) => bind(&mut sql, ">", v),
                SkCond::Ge(v) => bind(&mut sql, ">=", v),
                SkCond::Between(a, b) => {
                    bind(&mut sql, ">=", a);
                    bind(&mut sql, "<=", b);
                }
                SkCond::BeginsWith(p) => {
                    // Range form of a prefix match: [p, p + U+FFFF).
                    bind(&mut sql, ">=", p);
                    bind(&mut sql, "<", &format!("{p}\u{ffff}"));
                }
            }
            let cmp = if q.forward { ">" } else { "<" };
            let dir = if q.forward { "ASC" } else { "DESC" };
            if let Some(cur) = &q.start_after {
                match q.index {
                    None => {
                        args.push(cur.sk.clone().into());
                        sql.push_str(&format!(" AND sk {cmp} ?{}", args.len()));
                    }
                    Some(_) => {
                        let n = args.len();
                        args.push(cur.index_sk.clone().unwrap_or_default().into());
                        args.push(cur.pk.clone().into());
                        args.push(cur.sk.clone().into());
                        sql.push_str(&format!(" AND ({scol}, pk, sk) {cmp} (?{}, ?{}, ?{})", n + 1, n + 2, n + 3));
                    }
                }
            }
            match q.index {
                None => sql.push_str(&format!(" ORDER BY sk {dir}")),
                Some(_) => sql.push_str(&format!(" ORDER BY {scol} {dir}, pk {dir}, sk {dir}")),
            }
            sql.push_str(&format!(" LIMIT {}", q.limit.saturating_add(1)));
            let mut stmt = c.prepare_cached(&sql).map_err(err)?;
            let mut items = stmt
                .query_map(rusqlite::params_from_iter(args), row_item)
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let more = items.len() > q.limit;
            items.truncate(q.limit);
            let next = if more { items.last().map(|i| Cursor::after(i, q.index)) } else { None };
            Ok(Page { items, next })
        })
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_write(&ops)?;
        self.write_grouped(ops).await
    }

    async fn write_each(&self, writes: Vec<Vec<WriteOp>>) -> Vec<Result<(), StoreError>> {
        let n = writes.len();
        let group = self.group.clone();
        let outcome = self.run(move |c, now| Ok(told(&group, &writes, || commit_each(c, &writes, now)))).await;
        // The blocking task itself failed: nothing was committed.
        outcome.unwrap_or_else(|e| {
            let why = e.to_string();
            (0..n).map(|_| Err(StoreError::unavailable(why.clone()))).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use domain::table::{Condition, Item, Key};

    fn put(n: usize, cond: Option<Condition>) -> Vec<WriteOp> {
        let key = Key::new(format!("A#T12345678#D#{n}"), "DRAFT");
        vec![WriteOp::Put { item: Item::new(key, 1, format!("{{\"n\":{n}}}")), cond }]
    }

    /// The checkpointer copies committed pages into the database file while the store is
    /// open, long before the writer's own checkpoint would (these commits are far short of
    /// its backstop): a copy of the file alone, without the log, holds them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_pages_reach_the_database_file_in_the_background() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path, Arc::new(SystemClock::default())).expect("open");
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let created = len(&path);
        let commits = usize::try_from(CHECKPOINT_EVERY).expect("small");
        for n in 0..commits {
            store.write(put(n, None)).await.expect("write");
        }
        // A copy of the database file alone (no log beside it) holds what the checkpoints
        // copied there: the writes, once the checkpointer has run.
        let copy = dir.path().join("copy.db");
        let in_file = || -> i64 {
            let _ = std::fs::remove_file(&copy);
            std::fs::copy(&path, &copy).ok();
            Connection::open(&copy)
                .and_then(|c| c.query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)))
                .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while in_file() == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(len(&path) > created, "no checkpoint after {commits} commits ({} bytes)", len(&path));
        assert!(in_file() > 0, "the database file holds none of {commits} commits");
    }

    /// A file of the old layout (items keyed `WITHOUT ROWID`) opens in the rowid layout with
    /// every item, its index entries answering queries as before.
    #[tokio::test]
    async fn a_file_of_the_old_layout_moves_to_the_rowid_layout_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        {
            let old = Connection::open(&path).expect("create");
            old.execute_batch(
                "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, gsi1pk TEXT, gsi1sk TEXT,
                    gsi2pk TEXT, gsi2sk TEXT, ttl INTEGER, version INTEGER NOT NULL, doc TEXT NOT NULL,
                    events TEXT, sum TEXT, PRIMARY KEY (pk, sk)) WITHOUT ROWID;
                 CREATE INDEX gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
                 CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL,
                    removed INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO items (pk, sk, gsi1pk, gsi1sk, version, doc, sum)
                    VALUES ('A#T1#D#1', 'DRAFT', 'A#T1#DRAFTS', '2026#1', 3, '{\"n\":1}', '{}'),
                           ('A#T1#D#2', 'DRAFT', 'A#T1#DRAFTS', '2026#2', 1, '{\"n\":2}', '{}');",
            )
            .expect("old layout");
        }
        let store = SqliteStore::open(&path, Arc::new(SystemClock::default())).expect("open");
        let got = store.get(&Key::new("A#T1#D#1", "DRAFT")).await.expect("get").expect("kept");
        assert_eq!((got.version, got.doc.as_str()), (3, "{\"n\":1}"));
        let q = Query { index: Some(Index::Gsi1), ..Query::partition("A#T1#DRAFTS".to_owned()) };
        let page = store.query(&q).await.expect("query");
        assert_eq!(page.items.iter().map(|i| i.pk.as_str()).collect::<Vec<_>>(), ["A#T1#D#1", "A#T1#D#2"]);
        store.write(put(3, Some(Condition::NotExists))).await.expect("a write in the new layout");
        let ddl: String = Connection::open(&path)
            .and_then(|c| c.query_row("SELECT sql FROM sqlite_master WHERE name = 'items'", [], |r| r.get(0)))
            .expect("ddl");
        assert!(!ddl.contains("WITHOUT ROWID"), "{ddl}");
    }

    /// Every write, grouped or batched, drops what the memo kept for its partitions before
    /// the writer hears back, and a read taken before it is not kept after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_tell_the_memo_before_their_writer_is_answered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("s.db"), Arc::new(SystemClock::default())).expect("open");
        let memo = Arc::new(crate::memo::Memo::<&'static str>::new(64, 1 << 20));
        assert!(store.tell(memo.clone()));
        assert!(!store.tell(memo.clone()), "one listener per store");
        let pk = "A#T12345678#D#1";
        memo.keep(pk, memo.ticket(pk), "before", 6, None);
        memo.keep("A#T12345678#D#2", memo.ticket("A#T12345678#D#2"), "other", 5, None);
        let stale = memo.ticket(pk);
        store.write(put(1, None)).await.expect("write");
        assert_eq!(memo.get(pk, 0), None, "the grouped write dropped it");
        assert_eq!(memo.get("A#T12345678#D#2", 0), Some("other"), "another partition's value stays");
        memo.keep(pk, stale, "read before the write", 6, None);
        assert_eq!(memo.get(pk, 0), None);
        memo.keep(pk, memo.ticket(pk), "after", 5, None);
        let results = store.write_each(vec![put(1, None)]).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(memo.get(pk, 0), None, "the batched write dropped it");
    }

    /// The sweeper's removals are writes too: the memo lets go of what it kept of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweep_tells_the_memo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(crate::clock::ManualClock::at(1_000));
        let store = SqliteStore::open(&dir.path().join("s.db"), clock.clone()).expect("open");
        let memo = Arc::new(crate::memo::Memo::<&'static str>::new(64, 1 << 20));
        assert!(store.tell(memo.clone()));
        let mut ops = put(1, None);
        if let Some(WriteOp::Put { item, .. }) = ops.first_mut() {
            item.ttl = Some(2_000);
        }
        store.write(ops).await.expect("write");
        let pk = "A#T12345678#D#1";
        // Kept with no expiry of its own: only the sweep's telling can drop it.
        memo.keep(pk, memo.ticket(pk), "kept", 4, None);
        clock.advance(1_000);
        assert_eq!(store.sweep().await.expect("sweep"), 1);
        assert_eq!(memo.get(pk, 0), None);
    }

    /// Writes queued behind a held writer share one commit; the one whose condition fails
    /// is refused alone, and every other is applied and acknowledged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // Holding the writer while the writes queue is the point: it makes them one group.
    #[allow(clippy::await_holding_lock)]
    async fn a_failed_condition_in_a_group_fails_only_its_own_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Arc::new(SqliteStore::open(&dir.path().join("s.db"), Arc::new(SystemClock::default())).expect("open"));
        let mut first = put(7, None);
        if let Some(WriteOp::Put { item, .. }) = first.first_mut() {
            item.doc = "{\"before\":true}".into();
        }
        store.write(first).await.expect("the item the failing write collides with");
        let before = store.commit_stats();
        let held = store.hold_writer().expect("hold");
        let writes: Vec<_> = (0..20)
            .map(|n| {
                let store = store.clone();
                // Write 7 wants the item absent: it exists, so this one must fail.
                let cond = Some(Condition::NotExists);
                tokio::spawn(async move { store.write(put(n, cond)).await })
            })
            .collect();
        // Let every write reach the queue before the writer is free again.
        while store.group.queue.lock().map(|q| q.pending.len()).unwrap_or(0) < 20 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(held);
        let mut outcomes = Vec::new();
        for w in writes {
            outcomes.push(w.await.expect("joined"));
        }
        let after = store.commit_stats();
        assert_eq!(after.commits - before.commits, 1, "one commit for all twenty");
        assert_eq!(after.writes - before.writes, 20);
        for (n, outcome) in outcomes.iter().enumerate() {
            if n == 7 {
                assert!(matches!(outcome, Err(StoreError::ConditionFailed { index: 0, .. })), "{outcome:?}");
            } else {
                assert!(outcome.is_ok(), "write {n}: {outcome:?}");
                let got = store.get(&Key::new(format!("A#T12345678#D#{n}"), "DRAFT")).await.expect("get");
                assert_eq!(got.map(|i| i.doc), Some(format!("{{\"n\":{n}}}")));
            }
        }
        // Write 7 left no trace: the item is the one written before.
        let seven = store.get(&Key::new("A#T12345678#D#7", "DRAFT")).await.expect("get").expect("there");
        assert_eq!(seven.doc, "{\"before\":true}");
        // And the commit reached the file: a fresh open sees every write.
        drop(store);
        let reopened = SqliteStore::open(&dir.path().join("s.db"), Arc::new(SystemClock::default())).expect("reopen");
        for n in 0..20 {
            assert!(reopened.get(&Key::new(format!("A#T12345678#D#{n}"), "DRAFT")).await.expect("get").is_some());
        }
    }
}
