//! A bounded least-recently-used cache of loaded Automerge documents.
//!
//! A small loaded document costs about 18 KB of heap (crate-facts §2), a case with its
//! events about 60 KB (measured at a hall), so a node keeps only the documents it is
//! working on and loads the rest from SQLite on demand. With
//! each document it keeps how many changes it took since its snapshot (`store::snapshot`).

use std::collections::{BTreeMap, HashMap};

use automerge::Automerge;
use yizhan_sync::ids::DocId;

pub struct DocCache {
    capacity: usize,
    tick: u64,
    docs: HashMap<DocId, (Automerge, u64, u32)>,
    by_use: BTreeMap<u64, DocId>,
}

impl DocCache {
    pub fn new(capacity: usize) -> DocCache {
        DocCache {
            capacity: capacity.max(1),
            tick: 0,
            docs: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    pub fn get_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
        self.tick += 1;
        let tick = self.tick;
        let (doc, used, _) = self.docs.get_mut(id)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, id.clone());
        Some(doc)
    }

    /// How many changes the cached document took since its snapshot was written.
    pub fn since_snapshot(&mut self, id: &DocId) -> Option<&mut u32> {
        self.docs.get_mut(id).map(|(_, _, since)| since)
    }

    pub fn insert(&mut self, id: DocId, doc: Automerge) {
        self.insert_since(id, doc, 0);
    }

    /// Caches a document that took `since` changes since its snapshot.
    pub fn insert_since(&mut self, id: DocId, doc: Automerge, since: u32) {
        self.remove(&id);
        while self.docs.len() >= self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.docs.remove(&oldest);
        }
        self.tick += 1;
        self.by_use.insert(self.tick, id.clone());
        self.docs.insert(id, (doc, self.tick, since));
    }

    pub fn remove(&mut self, id: &DocId) {
        self.remove_doc(id);
    }

    /// Removes a document and hands it back.
    pub fn remove_doc(&mut self, id: &DocId) -> Option<Automerge> {
        self.remove_entry(id).map(|(doc, _)| doc)
    }

    /// Removes a document and hands it back with its changes since its snapshot.
    pub fn remove_entry(&mut self, id: &DocId) -> Option<(Automerge, u32)> {
        let (doc, used, since) = self.docs.remove(id)?;
        self.by_use.remove(&used);
        Some((doc, since))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.docs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> DocId {
        DocId::parse(&format!("d-{n}")).unwrap()
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut cache = DocCache::new(2);
        cache.insert(id(1), Automerge::new());
        cache.insert(id(2), Automerge::new());
        assert!(cache.get_mut(&id(1)).is_some());
        cache.insert(id(3), Automerge::new());
        assert!(cache.get_mut(&id(2)).is_none(), "2 was least recently used");
        assert!(cache.get_mut(&id(1)).is_some());
        assert!(cache.get_mut(&id(3)).is_some());
        assert_eq!(cache.len(), 2);
        cache.remove(&id(1));
        cache.insert(id(1), Automerge::new());
        cache.insert(id(1), Automerge::new());
        assert_eq!(cache.len(), 2);
        for n in 0..100 {
            cache.insert(id(n), Automerge::new());
            assert!(cache.len() <= 2);
        }
    }
}
