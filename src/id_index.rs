//! Duplicate-id detection in flat memory: a map from a 64-bit hash of each id to where it was
//! first seen (16–24 bytes per record, whatever the ids' length). A hash match is confirmed by
//! re-reading the id stored at the earlier location, so a hash collision is never reported as a
//! duplicate; the rare colliding id is then kept verbatim in a small side map.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

/// Ids seen so far, each with the location (row, file and row, …) where it first appeared.
#[derive(Debug)]
pub(crate) struct IdIndex<L> {
    by_hash: HashMap<u64, L>,
    /// Ids whose hash collided with a different id's, by value.
    exact: HashMap<String, L>,
}

impl<L: Copy> IdIndex<L> {
    /// An empty index.
    pub fn new() -> Self {
        IdIndex {
            by_hash: HashMap::new(),
            exact: HashMap::new(),
        }
    }

    /// Records `id` at `at`, or returns where the same id appeared first. `id_at` re-reads the id
    /// at an earlier location; it is called only when the hashes match.
    pub fn insert<E>(
        &mut self,
        id: &str,
        at: L,
        id_at: impl FnOnce(L) -> Result<String, E>,
    ) -> Result<Option<L>, E> {
        if let Some(&first) = self.exact.get(id) {
            return Ok(Some(first));
        }
        let hash = hash(id);
        let Some(&first) = self.by_hash.get(&hash) else {
            self.by_hash.insert(hash, at);
            return Ok(None);
        };
        if id_at(first)? == id {
            Ok(Some(first))
        } else {
            self.exact.insert(id.to_string(), at);
            Ok(None)
        }
    }
}

/// A fixed-key 64-bit hash (the same in every process, so re-reads agree).
fn hash(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(id.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_first_location_of_a_repeated_id() {
        let ids = ["a", "b", "c", "b"];
        let mut index = IdIndex::new();
        let mut found = None;
        for (row, id) in ids.iter().enumerate() {
            if let Some(first) = index
                .insert(id, row, |at| Ok::<_, ()>(ids[at].to_string()))
                .unwrap()
            {
                found = Some((first, row));
            }
        }
        assert_eq!(found, Some((1, 3)));
    }

    #[test]
    fn a_hash_collision_is_confirmed_and_not_reported() {
        let mut index = IdIndex::new();
        // plant a collision: `y` under the hash of `x`
        index.by_hash.insert(hash("x"), 0usize);
        let stored = ["y"];
        let again = index
            .insert("x", 1, |at| Ok::<_, ()>(stored[at].to_string()))
            .unwrap();
        assert_eq!(again, None);
        // the colliding id is now known by value: its repeat is found without re-reading
        let repeat = index
            .insert("x", 2, |_| -> Result<String, ()> { panic!("no re-read") })
            .unwrap();
        assert_eq!(repeat, Some(1));
    }
}
