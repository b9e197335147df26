//! [`StatementCache`]: one connection's prepared statements by SQL text,
//! bounded by a capacity, the least recently used evicted first.
//!
//! Every statement taken out of the cache is closed on the server (the
//! client sends `Close`), except that an entry is only evicted while no
//! task holds its [`Statement`]: a statement a task is about to run, or one
//! a caller keeps, is never closed under it. While more than `capacity`
//! entries are held, the cache stays above its capacity and sheds the
//! excess as the handles are dropped and new statements come in.
//!
//! `DISCARD ALL` and `DEALLOCATE ALL` make the server forget every prepared
//! statement; the client then [clears](StatementCache::clear) the cache and
//! the statements still held are marked closed, so their next run prepares
//! them again.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::config::Config;
use crate::error::{sqlstate, Error};
use crate::wire::statement::Statement;

/// No entry (the end of the recency list).
const NIL: usize = usize::MAX;

/// How many descriptions a client keeps for unnamed runs when
/// `statement_cache_capacity` is 0 (the default capacity).
const DESCRIPTIONS_WITHOUT_STATEMENT_CACHE: usize = 256;

/// How many descriptions a client keeps for unnamed runs: the statement
/// cache's capacity, or its default when that is 0 (no named statements;
/// descriptions cost the server nothing).
pub(crate) fn description_capacity(config: &Config) -> usize {
    match config.statement_cache_capacity() {
        0 => DESCRIPTIONS_WITHOUT_STATEMENT_CACHE,
        capacity => capacity,
    }
}

/// The server no longer knows a cached statement, or its result type
/// changed under it: prepare it again.
pub(crate) fn is_stale_statement(e: &Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            db.code == sqlstate::INVALID_SQL_STATEMENT_NAME
                || (db.code == sqlstate::FEATURE_NOT_SUPPORTED
                    && db.message.starts_with("cached plan must not change"))
        }
        None => false,
    }
}

/// A fast hasher for the cache's keys (SQL texts): a word at a time, one
/// multiply each, and a folded multiply at the end so that every bit of the
/// text reaches the bits the hash table indexes by. The standard SipHash
/// was about 60% of a cached lookup, which every statement run by SQL text
/// makes (the ORM's reads among them). It is not keyed: texts made to
/// collide cost at most a comparison per cached statement, and the cache
/// holds at most its capacity.
#[derive(Default, Clone, Copy)]
struct SqlHasher {
    hash: u64,
}

/// An odd constant with well-spread bits (2^64 / the golden ratio).
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

impl SqlHasher {
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(23) ^ word).wrapping_mul(SPREAD);
    }
}

impl Hasher for SqlHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The length first: texts that differ only by trailing zero bytes
        // (the padding of the last word) hash apart.
        self.mix(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        let full = u128::from(self.hash) * u128::from(SPREAD);
        (full as u64) ^ ((full >> 64) as u64)
    }
}

/// The cache's map from SQL text to slot.
type BySql = HashMap<String, usize, BuildHasherDefault<SqlHasher>>;

/// One cached statement and its place in the recency list.
struct Entry {
    statement: Statement,
    /// The next more recently used entry, or [`NIL`].
    newer: usize,
    /// The next less recently used entry, or [`NIL`].
    older: usize,
}

/// What [`StatementCache::insert`] did.
pub(crate) struct Insertion {
    /// The statement to use: the one inserted, or the one another task
    /// cached for the same SQL meanwhile.
    pub(crate) cached: Statement,
    /// Statements taken out of the cache and marked closed, for which the
    /// server must be sent `Close`.
    pub(crate) closed: Vec<Statement>,
}

/// A least-recently-used map from SQL text to prepared statement. Lookups,
/// insertions and evictions are O(1) (a hash map of slots in a slab that
/// also forms a doubly linked recency list), apart from the held entries
/// an eviction steps over.
pub(crate) struct StatementCache {
    capacity: usize,
    by_sql: BySql,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    newest: usize,
    oldest: usize,
}

impl std::fmt::Debug for StatementCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl StatementCache {
    /// An empty cache keeping up to `capacity` statements nobody holds.
    pub(crate) fn new(capacity: usize) -> StatementCache {
        StatementCache {
            capacity,
            by_sql: BySql::default(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
        }
    }

    /// How many statements are cached.
    pub(crate) fn len(&self) -> usize {
        self.by_sql.len()
    }

    /// The statement cached for `sql`, now the most recently used.
    pub(crate) fn get(&mut self, sql: &str) -> Option<Statement> {
        let slot = *self.by_sql.get(sql)?;
        self.touch(slot);
        Some(self.entry(slot).statement.clone())
    }

    /// Caches `statement` as the most recently used, unless a statement for
    /// the same SQL is cached already (then `statement` is marked closed and
    /// returned among [`Insertion::closed`]), and evicts the least recently
    /// used statements nobody holds while the cache is over capacity.
    pub(crate) fn insert(&mut self, statement: Statement) -> Insertion {
        if let Some(cached) = self.get(statement.sql()) {
            statement.mark_closed();
            return Insertion {
                cached,
                closed: vec![statement],
            };
        }
        let cached = statement.clone();
        let entry = Entry {
            statement,
            newer: NIL,
            older: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.by_sql.insert(cached.sql().to_owned(), slot);
        self.link_newest(slot);
        let closed = self.evict_excess();
        Insertion { cached, closed }
    }

    /// Takes `statement` out of the cache, marked closed, if it is the one
    /// cached for its SQL (another task may have replaced it already).
    /// True when it was: the server must then be sent `Close`.
    pub(crate) fn remove(&mut self, statement: &Statement) -> bool {
        statement.mark_closed();
        let Some(&slot) = self.by_sql.get(statement.sql()) else {
            return false;
        };
        if self.entry(slot).statement.name() != statement.name() {
            return false;
        }
        self.take(slot);
        true
    }

    /// Empties the cache after the server forgot every prepared statement;
    /// the statements still held elsewhere are marked closed.
    pub(crate) fn clear(&mut self) {
        for entry in self.slots.drain(..).flatten() {
            entry.statement.mark_closed();
        }
        self.by_sql.clear();
        self.free.clear();
        self.newest = NIL;
        self.oldest = NIL;
    }

    /// Evicts, oldest first, the statements nobody else holds until the
    /// cache is back within its capacity (or only held ones are left).
    fn evict_excess(&mut self) -> Vec<Statement> {
        let mut closed = Vec::new();
        let mut slot = self.oldest;
        while self.len() > self.capacity && slot != NIL {
            let entry = self.entry(slot);
            let newer = entry.newer;
            if !entry.statement.is_held_elsewhere() {
                let statement = self.take(slot);
                statement.mark_closed();
                closed.push(statement);
            }
            slot = newer;
        }
        closed
    }

    fn entry(&self, slot: usize) -> &Entry {
        self.slots[slot]
            .as_ref()
            .expect("a linked slot is occupied")
    }

    fn entry_mut(&mut self, slot: usize) -> &mut Entry {
        self.slots[slot]
            .as_mut()
            .expect("a linked slot is occupied")
    }

    /// Removes the entry in `slot` from the map and the list.
    fn take(&mut self, slot: usize) -> Statement {
        self.unlink(slot);
        let entry = self.slots[slot].take().expect("a linked slot is occupied");
        self.by_sql.remove(entry.statement.sql());
        self.free.push(slot);
        entry.statement
    }

    /// Makes `slot` the most recently used.
    fn touch(&mut self, slot: usize) {
        if self.newest != slot {
            self.unlink(slot);
            self.link_newest(slot);
        }
    }

    fn link_newest(&mut self, slot: usize) {
        let previous = self.newest;
        {
            let entry = self.entry_mut(slot);
            entry.newer = NIL;
            entry.older = previous;
        }
        match previous {
            NIL => self.oldest = slot,
            previous => self.entry_mut(previous).newer = slot,
        }
        self.newest = slot;
    }

    fn unlink(&mut self, slot: usize) {
        let (newer, older) = {
            let entry = self.entry(slot);
            (entry.newer, entry.older)
        };
        match newer {
            NIL => self.newest = older,
            newer => self.entry_mut(newer).older = older,
        }
        match older {
            NIL => self.oldest = newer,
            older => self.entry_mut(older).newer = newer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(n: usize) -> Statement {
        Statement::new(
            format!("odm_s{n}"),
            format!("SELECT {n}"),
            1,
            Vec::new(),
            Vec::new(),
        )
    }

    fn names(statements: &[Statement]) -> Vec<&str> {
        statements.iter().map(Statement::name).collect()
    }

    #[test]
    fn the_least_recently_used_statement_is_evicted_and_marked_closed() {
        let mut cache = StatementCache::new(2);
        assert!(cache.insert(statement(1)).closed.is_empty());
        assert!(cache.insert(statement(2)).closed.is_empty());
        assert_eq!(cache.get("SELECT 1").unwrap().name(), "odm_s1");
        let evicted = cache.insert(statement(3)).closed;
        assert_eq!(names(&evicted), ["odm_s2"]);
        assert!(evicted[0].is_closed());
        assert_eq!(cache.len(), 2);
        assert!(cache.get("SELECT 2").is_none());
        let evicted = cache.insert(statement(4)).closed;
        assert_eq!(names(&evicted), ["odm_s1"]);
        assert!(cache.get("SELECT 3").is_some() && cache.get("SELECT 4").is_some());
    }

    #[test]
    fn a_statement_someone_holds_is_not_evicted_until_it_is_dropped() {
        let mut cache = StatementCache::new(1);
        let held = cache.insert(statement(1)).cached;
        assert!(cache.insert(statement(2)).closed.is_empty());
        assert_eq!(cache.len(), 2);
        let evicted = cache.insert(statement(3)).closed;
        assert_eq!(names(&evicted), ["odm_s2"]);
        assert!(!held.is_closed());
        drop(held);
        let evicted = cache.insert(statement(4)).closed;
        assert_eq!(names(&evicted), ["odm_s1", "odm_s3"]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_second_statement_for_the_same_sql_is_closed_and_the_first_kept() {
        let mut cache = StatementCache::new(4);
        cache.insert(statement(1));
        let duplicate = Statement::new(
            "odm_s9".into(),
            "SELECT 1".into(),
            1,
            Vec::new(),
            Vec::new(),
        );
        let insertion = cache.insert(duplicate);
        assert_eq!(insertion.cached.name(), "odm_s1");
        assert_eq!(names(&insertion.closed), ["odm_s9"]);
        assert!(insertion.closed[0].is_closed());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn removing_a_replaced_statement_leaves_its_successor() {
        let mut cache = StatementCache::new(4);
        let first = cache.insert(statement(1)).cached;
        assert!(cache.remove(&first));
        assert!(first.is_closed());
        let second = Statement::new(
            "odm_s2".into(),
            "SELECT 1".into(),
            1,
            Vec::new(),
            Vec::new(),
        );
        cache.insert(second);
        assert!(!cache.remove(&first));
        assert_eq!(cache.get("SELECT 1").unwrap().name(), "odm_s2");
    }

    fn sql_hash(sql: &str) -> u64 {
        use std::hash::BuildHasher;
        BuildHasherDefault::<SqlHasher>::default().hash_one(sql)
    }

    #[test]
    fn sql_texts_hash_apart_and_spread_over_the_low_bits() {
        assert_eq!(sql_hash("SELECT 1"), sql_hash("SELECT 1"));
        assert_ne!(sql_hash("SELECT 1"), sql_hash("SELECT 2"));
        assert_ne!(sql_hash("ab"), sql_hash("ab\0"));
        assert_ne!(sql_hash(""), sql_hash("\0"));
        // Texts that differ in one digit (as generated SQL does) land in
        // many different buckets of a 256-bucket table.
        let mut buckets = std::collections::HashSet::new();
        for n in 0..1000 {
            let sql = format!("SELECT id, name FROM item WHERE id = ${n} ORDER BY id");
            buckets.insert(sql_hash(&sql) & 0xff);
        }
        assert!(buckets.len() > 200, "{} buckets of 256", buckets.len());
    }

    #[test]
    fn clearing_marks_every_held_statement_closed_and_slots_are_reused() {
        let mut cache = StatementCache::new(8);
        let held = cache.insert(statement(1)).cached;
        cache.insert(statement(2));
        cache.clear();
        assert_eq!(cache.len(), 0);
        assert!(held.is_closed());
        for n in 0..20 {
            cache.insert(statement(n));
        }
        assert_eq!(cache.len(), 8);
        assert!(cache.slots.len() <= 9, "{}", cache.slots.len());
    }
}
