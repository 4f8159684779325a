//! Duplicate-id detection in flat memory: each id of a stream is logged as a 64-bit hash and a
//! 64-bit location (16 bytes per record, whatever the ids' length). After the stream, the log is
//! sorted and equal hashes are confirmed by re-reading the ids at their locations, so a hash
//! collision between different ids is never reported as a duplicate.

use std::hash::{DefaultHasher, Hasher};

/// A repeated id and where it appears (the pair whose second occurrence comes first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duplicate {
    /// The id.
    pub id: String,
    /// Location of its first occurrence.
    pub first: u64,
    /// Location of its second occurrence.
    pub second: u64,
}

/// The ids of a stream, as (hash, location) pairs.
#[derive(Debug, Default)]
pub(crate) struct IdLog {
    entries: Vec<(u64, u64)>,
}

impl IdLog {
    /// An empty log.
    pub fn new() -> Self {
        IdLog::default()
    }

    /// Logs `id` at `location` (locations must increase along the stream).
    pub fn push(&mut self, id: &str, location: u64) {
        self.entries.push((hash(id), location));
    }

    /// The first repeated id — the one whose second occurrence comes earliest — with both
    /// locations. `id_at` re-reads the id at a location; it is called only for equal hashes.
    pub fn first_duplicate<E>(
        mut self,
        mut id_at: impl FnMut(u64) -> Result<String, E>,
    ) -> Result<Option<Duplicate>, E> {
        self.entries.sort_unstable();
        // runs of equal hashes, each sorted by location; ordered by their second location
        let mut runs: Vec<&[(u64, u64)]> = self
            .entries
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|run| run.len() > 1)
            .collect();
        runs.sort_unstable_by_key(|run| run[1].1);
        let mut best: Option<Duplicate> = None;
        for run in runs {
            if best.as_ref().is_some_and(|b| b.second < run[1].1) {
                break;
            }
            let mut seen: Vec<(String, u64)> = Vec::new();
            for &(_, location) in run {
                let id = id_at(location)?;
                if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
                    if best.as_ref().is_none_or(|b| location < b.second) {
                        best = Some(Duplicate {
                            id,
                            first: *first,
                            second: location,
                        });
                    }
                    break;
                }
                seen.push((id, location));
            }
        }
        Ok(best)
    }
}

/// A fixed-key 64-bit hash (the same for every call, so re-reads agree).
fn hash(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(id.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(ids: &[&str]) -> Option<Duplicate> {
        let mut log = IdLog::new();
        for (at, id) in ids.iter().enumerate() {
            log.push(id, at as u64);
        }
        log.first_duplicate(|at| Ok::<_, ()>(ids[at as usize].to_string()))
            .unwrap()
    }

    #[test]
    fn reports_the_earliest_repeat_with_both_locations() {
        assert_eq!(find(&["a", "b", "c"]), None);
        let dup = find(&["a", "b", "c", "c", "b", "a"]).unwrap();
        assert_eq!((dup.id.as_str(), dup.first, dup.second), ("c", 2, 3));
        let dup = find(&["x", "y", "x", "y", "y"]).unwrap();
        assert_eq!((dup.id.as_str(), dup.first, dup.second), ("x", 0, 2));
    }

    #[test]
    fn a_hash_collision_is_confirmed_and_not_reported() {
        // plant a collision: `y` logged under the hash of `x`
        let ids = ["x", "y", "z"];
        let mut log = IdLog::new();
        log.entries.push((hash("x"), 0));
        log.entries.push((hash("x"), 1));
        log.push("z", 2);
        let found = log
            .first_duplicate(|at| Ok::<_, ()>(ids[at as usize].to_string()))
            .unwrap();
        assert_eq!(found, None);
    }
}
