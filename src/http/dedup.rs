//! Which deliveries were already accepted: GitHub redelivers with the same
//! `X-GitHub-Delivery` id (by hand from the App's settings, or through the
//! API), and a redelivery must not start a second run.
//!
//! Two parts:
//! - an in-memory front, consulted on every delivery: a set of the most recent
//!   `capacity` ids, and a ring holding them in arrival order, so the oldest is
//!   forgotten when a new one comes in. Ids are kept as the first 128 bits of
//!   their SHA-256 (16 bytes instead of a 36-character string and its
//!   allocation, twice: 100,000 ids take about 4 MB instead of 15; two ids
//!   share a key with probability about 2^-128 per pair);
//! - a SQLite table (`deliveries.db` in the data dir, WAL), which reloads the
//!   front after a restart. Accepted ids are written by a background thread in
//!   batches (one transaction for everything that arrived since the last
//!   commit, at most one commit per 10 ms), so a request never waits for a
//!   disk commit; the table is pruned to the newest `capacity` ids in the same
//!   transaction.
//!
//! The crash window: ids accepted in the last moments before a crash (those
//! still in the channel or in an uncommitted batch: some 10 to 20 ms' worth)
//! are forgotten, and a redelivery of one of them would be accepted
//! again. That is acceptable because the work those deliveries queued is
//! lost in the same crash (the service's queue is in memory too) and is
//! recovered the same way, by the periodic resync of every repository; and a
//! push that is handled twice starts nothing new, since runs are named after
//! their idempotency key.
//!
//! A delivery is only marked seen once it was accepted ([`Claim::accept`]):
//! a delivery refused for its signature, its payload, or a full queue does
//! not poison its id. While a delivery is being handled its id is *pending*,
//! so that a concurrent copy of it is answered as a duplicate rather than
//! handled twice.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use crate::triggers::DeliveryId;

/// Why the dedup store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the delivery log {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot start the delivery log writer: {0}")]
    Thread(std::io::Error),
}

/// The most ids one write transaction takes; more wait for the next one.
const MAX_BATCH: usize = 4096;

/// The writer commits at most once per interval: ids accepted meanwhile wait
/// in the channel and go into the next transaction together. This bounds the
/// commits to 100 a second whatever the load, and spares the request path a
/// wake-up of the writer thread per delivery (a send only wakes a writer that
/// is blocked waiting).
const COMMIT_INTERVAL: Duration = Duration::from_millis(10);

/// The most ids room is made for when opening.
const PREALLOCATE_MAX: usize = 128 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    accepted_at INTEGER NOT NULL
);
";

type Key = u128;

fn key_of(id: &DeliveryId) -> Key {
    let digest = Sha256::digest(id.as_str().as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

enum Msg {
    Accepted(String),
    /// Answered once everything sent before it is committed.
    Flush(mpsc::SyncSender<()>),
}

struct Front {
    seen: HashSet<Key>,
    /// `seen` in arrival order, oldest first.
    order: VecDeque<Key>,
    pending: HashSet<Key>,
    /// `None` once closed: accepted ids are then only remembered in memory.
    writer: Option<mpsc::Sender<Msg>>,
}

/// The persisted, bounded set of accepted delivery ids. Share it behind an
/// `Arc`; all methods take `&self`.
pub struct Dedup {
    front: Mutex<Front>,
    capacity: usize,
    path: PathBuf,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl Dedup {
    /// The file it keeps in the data dir.
    pub const FILE_NAME: &'static str = "deliveries.db";

    /// Opens (creating if needed) `data_dir/deliveries.db`, loads the newest
    /// `capacity` ids (at least 1), prunes older ones, and starts the writer.
    pub fn open(data_dir: &Path, capacity: usize) -> Result<Dedup, DedupError> {
        let capacity = capacity.max(1);
        std::fs::create_dir_all(data_dir).map_err(|source| DedupError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(Self::FILE_NAME);
        let open_err = |source| DedupError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        // With WAL, NORMAL loses nothing on a process crash, only possibly the
        // last commits on a power loss: within the window documented above.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        let limit = i64::try_from(capacity).unwrap_or(i64::MAX);
        // Exact pruning once at start (the capacity may have been lowered);
        // the writer then keeps it with cheaper arithmetic on `seq`.
        conn.execute(
            "DELETE FROM deliveries WHERE seq < (SELECT seq FROM deliveries
                 ORDER BY seq DESC LIMIT 1 OFFSET ?1 - 1)",
            [limit],
        )
        .map_err(open_err)?;
        // Room for the default capacity up front, so the set does not rehash
        // while requests wait; beyond that, grow as needed.
        let initial = capacity.min(PREALLOCATE_MAX);
        let mut seen = HashSet::with_capacity(initial);
        let mut order = VecDeque::with_capacity(initial);
        {
            let mut stmt = conn
                .prepare("SELECT id FROM deliveries ORDER BY seq")
                .map_err(open_err)?;
            let ids = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(open_err)?;
            for id in ids {
                let id = id.map_err(open_err)?;
                // Rows are only ever written from valid ids; skip anything else.
                if let Ok(id) = DeliveryId::parse(&id) {
                    let key = key_of(&id);
                    if seen.insert(key) {
                        order.push_back(key);
                    }
                }
            }
        }
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("cairn-dedup".into())
            .spawn(move || write_loop(conn, rx, limit))
            .map_err(DedupError::Thread)?;
        tracing::debug!(path = %path.display(), loaded = order.len(), capacity, "delivery log open");
        Ok(Dedup {
            front: Mutex::new(Front {
                seen,
                order,
                pending: HashSet::new(),
                writer: Some(tx),
            }),
            capacity,
            path,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Front> {
        // A panic while holding the lock leaves the sets consistent enough
        // (at worst one id pending for ever): keep serving.
        self.front.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `id` for handling, or `None` when it was already accepted or
    /// is being handled right now. Dropping the claim without
    /// [`Claim::accept`] releases the id.
    pub fn claim(&self, id: &DeliveryId) -> Option<Claim<'_>> {
        let key = key_of(id);
        let mut front = self.lock();
        if front.seen.contains(&key) || !front.pending.insert(key) {
            return None;
        }
        Some(Claim {
            dedup: self,
            key,
            id: Some(id.as_str().to_owned()),
        })
    }

    /// Whether `id` was accepted (and not yet forgotten).
    pub fn contains(&self, id: &DeliveryId) -> bool {
        self.lock().seen.contains(&key_of(id))
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Blocks until every id accepted so far is committed to disk. For
    /// shutdown and tests; from async code, call it in `spawn_blocking`.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        let sent = match &self.lock().writer {
            Some(writer) => writer.send(Msg::Flush(tx)).is_ok(),
            None => false,
        };
        if sent {
            // An error means the writer is gone, and with it anything to wait for.
            let _ = rx.recv();
        }
    }

    /// Commits what is pending and stops the writer; ids accepted afterwards
    /// are only remembered in memory. Blocking, like [`Dedup::flush`]; also
    /// done on drop.
    pub fn close(&self) {
        let writer = self.lock().writer.take();
        drop(writer);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the delivery log writer panicked");
            }
        }
    }

    fn accept(&self, key: Key, id: String) {
        let mut front = self.lock();
        front.pending.remove(&key);
        if !front.seen.insert(key) {
            return;
        }
        front.order.push_back(key);
        if front.order.len() > self.capacity {
            if let Some(oldest) = front.order.pop_front() {
                front.seen.remove(&oldest);
            }
        }
        if let Some(writer) = &front.writer {
            // Fails only if the writer thread died; it logged why.
            let _ = writer.send(Msg::Accepted(id));
        }
    }

    fn release(&self, key: Key) {
        self.lock().pending.remove(&key);
    }
}

impl Drop for Dedup {
    fn drop(&mut self) {
        self.close();
    }
}

/// A delivery id reserved by [`Dedup::claim`].
#[must_use = "a claim is released when dropped; call accept() to mark the delivery seen"]
pub struct Claim<'a> {
    dedup: &'a Dedup,
    key: Key,
    /// Taken by `accept`.
    id: Option<String>,
}

impl Claim<'_> {
    /// Marks the delivery seen, in memory at once and on disk shortly after.
    pub fn accept(mut self) {
        if let Some(id) = self.id.take() {
            self.dedup.accept(self.key, id);
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.id.is_some() {
            self.dedup.release(self.key);
        }
    }
}

fn write_loop(mut conn: Connection, rx: mpsc::Receiver<Msg>, capacity: i64) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Ok(first) = rx.recv() {
        let started = Instant::now();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Accepted(id) => batch.push(id),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            if let Err(e) = write_batch(&mut conn, &batch, capacity) {
                tracing::error!(error = %e, lost = batch.len(), "cannot record accepted delivery ids");
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if let Some(rest) = COMMIT_INTERVAL.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

fn write_batch(conn: &mut Connection, ids: &[String], capacity: i64) -> rusqlite::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let tx = conn.transaction()?;
    {
        // REPLACE gives an id seen again (after it was forgotten) a new seq.
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO deliveries (id, accepted_at) VALUES (?1, ?2)",
        )?;
        for id in ids {
            insert.execute(params![id, now])?;
        }
        // `seq` grows by one per insert, so this keeps the newest `capacity`
        // (fewer only after a REPLACE left a gap), with a range delete on
        // the primary key instead of a scan.
        tx.prepare_cached(
            "DELETE FROM deliveries WHERE seq <= (SELECT MAX(seq) FROM deliveries) - ?1",
        )?
        .execute([capacity])?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> DeliveryId {
        DeliveryId::parse(&format!("d-{n}")).unwrap()
    }

    fn rows(dedup: &Dedup) -> Vec<String> {
        let conn = Connection::open(dedup.path()).unwrap();
        let mut stmt = conn
            .prepare("SELECT id FROM deliveries ORDER BY seq")
            .unwrap();
        let rows = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    }

    #[test]
    fn claims_are_exclusive_and_released_unless_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let dedup = Dedup::open(dir.path(), 10).unwrap();
        let first = dedup.claim(&id(1)).unwrap();
        assert!(dedup.claim(&id(1)).is_none(), "pending ids are taken");
        drop(first);
        assert!(!dedup.contains(&id(1)));
        dedup.claim(&id(1)).unwrap().accept();
        assert!(dedup.contains(&id(1)));
        assert!(dedup.claim(&id(1)).is_none());
        dedup.flush();
        assert_eq!(rows(&dedup), ["d-1"]);
    }

    #[test]
    fn only_the_newest_are_kept_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let dedup = Dedup::open(dir.path(), 3).unwrap();
        for n in 0..5 {
            dedup.claim(&id(n)).unwrap().accept();
        }
        assert_eq!(dedup.len(), 3);
        assert!(!dedup.contains(&id(1)) && dedup.contains(&id(2)));
        dedup.close();
        assert_eq!(rows(&dedup), ["d-2", "d-3", "d-4"]);
        drop(dedup);

        // A forgotten id is accepted again, and becomes the newest.
        let dedup = Dedup::open(dir.path(), 3).unwrap();
        assert!(dedup.contains(&id(2)) && dedup.contains(&id(4)));
        dedup.claim(&id(0)).unwrap().accept();
        assert!(!dedup.contains(&id(2)));
        dedup.close();
        assert_eq!(rows(&dedup), ["d-3", "d-4", "d-0"]);
        drop(dedup);

        // A smaller capacity prunes at once, keeping the newest.
        let dedup = Dedup::open(dir.path(), 2).unwrap();
        assert_eq!(dedup.len(), 2);
        assert!(dedup.contains(&id(4)) && dedup.contains(&id(0)));
        assert_eq!(rows(&dedup), ["d-4", "d-0"]);
    }

    #[test]
    fn a_closed_log_still_deduplicates_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let dedup = Dedup::open(dir.path(), 3).unwrap();
        dedup.close();
        dedup.claim(&id(7)).unwrap().accept();
        assert!(dedup.claim(&id(7)).is_none());
        dedup.flush();
        assert!(rows(&dedup).is_empty());
    }

    #[test]
    fn many_batches_commit_everything() {
        let dir = tempfile::tempdir().unwrap();
        let dedup = Dedup::open(dir.path(), 100_000).unwrap();
        for n in 0..20_000 {
            dedup.claim(&id(n)).unwrap().accept();
        }
        dedup.flush();
        assert_eq!(rows(&dedup).len(), 20_000);
    }
}
