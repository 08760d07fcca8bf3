//! The directory's containers: shared objects found by a key they carry themselves.
//!
//! A `HashMap<String, Arc<T>>` keeps a second copy of every object's id as the map key, and an
//! index `HashMap<String, Vec<String>>` a third, plus the look-up back into the map. At a
//! million API keys those copies were most of the snapshot's memory. Here a [`Table`] is a set
//! of `Arc<T>` hashed by the object's own key, and an [`Index`] groups the same `Arc`s, so each
//! object and its id exist once.

use crate::model::KeyHash;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An object addressed by a key of its own (its id, or its store key).
pub trait Keyed {
    fn key(&self) -> &str;
}

/// A credential found by the keyed hash of its secret.
pub trait Hashed {
    fn secret_hash(&self) -> &KeyHash;
}

/// An `Arc<T>` that hashes and compares as `T`'s key, so that a set of them is a map by key.
#[derive(Debug)]
struct ByKey<T>(Arc<T>);

impl<T: Keyed> Borrow<str> for ByKey<T> {
    fn borrow(&self) -> &str {
        self.0.key()
    }
}

impl<T: Keyed> Hash for ByKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes: `Borrow<str>` requires the two to agree.
        self.0.key().hash(state);
    }
}

impl<T: Keyed> PartialEq for ByKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<T: Keyed> Eq for ByKey<T> {}

/// Objects by their key.
#[derive(Debug)]
pub struct Table<T> {
    items: HashSet<ByKey<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            items: HashSet::new(),
        }
    }
}

impl<T: Keyed> Table<T> {
    /// Adds `item`, replacing the object of the same key.
    pub fn insert(&mut self, item: Arc<T>) {
        self.items.replace(ByKey(item));
    }

    pub fn remove(&mut self, key: &str) -> Option<Arc<T>> {
        self.items.take(key).map(|item| item.0)
    }

    pub fn get(&self, key: &str) -> Option<&Arc<T>> {
        self.items.get(key).map(|item| &item.0)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.items.contains(key)
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<T>> {
        self.items.iter().map(|item| &item.0)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// An `Arc<T>` that hashes and compares as `T`'s secret hash.
#[derive(Debug)]
struct ByHash<T>(Arc<T>);

impl<T: Hashed> Borrow<KeyHash> for ByHash<T> {
    fn borrow(&self) -> &KeyHash {
        self.0.secret_hash()
    }
}

impl<T: Hashed> Hash for ByHash<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.secret_hash().hash(state);
    }
}

impl<T: Hashed> PartialEq for ByHash<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.secret_hash() == other.0.secret_hash()
    }
}

impl<T: Hashed> Eq for ByHash<T> {}

/// Credentials by the keyed hash of their secret, beside the [`Table`] that holds them by id.
#[derive(Debug)]
pub struct HashTable<T> {
    items: HashSet<ByHash<T>>,
}

impl<T> Default for HashTable<T> {
    fn default() -> Self {
        HashTable {
            items: HashSet::new(),
        }
    }
}

impl<T: Hashed> HashTable<T> {
    pub fn insert(&mut self, item: Arc<T>) {
        self.items.replace(ByHash(item));
    }

    /// Removes the entry for `item`'s hash, if it is `item` (another object may have taken the
    /// hash since).
    pub fn remove(&mut self, item: &Arc<T>) {
        if self
            .items
            .get(item.secret_hash())
            .is_some_and(|found| Arc::ptr_eq(&found.0, item))
        {
            self.items.remove(item.secret_hash());
        }
    }

    pub fn get(&self, hash: &KeyHash) -> Option<&Arc<T>> {
        self.items.get(hash).map(|item| &item.0)
    }
}

/// Objects grouped by a value they share (an account, a subject, an e-mail address).
#[derive(Debug)]
pub struct Index<T> {
    groups: HashMap<Box<str>, Vec<Arc<T>>>,
}

impl<T> Default for Index<T> {
    fn default() -> Self {
        Index {
            groups: HashMap::new(),
        }
    }
}

impl<T: Keyed> Index<T> {
    pub fn add(&mut self, group: &str, item: &Arc<T>) {
        match self.groups.get_mut(group) {
            Some(items) => items.push(Arc::clone(item)),
            None => {
                self.groups.insert(group.into(), vec![Arc::clone(item)]);
            }
        }
    }

    /// Removes the object of key `key` from `group`, and the group once it is empty.
    pub fn remove(&mut self, group: &str, key: &str) {
        if let Some(items) = self.groups.get_mut(group) {
            items.retain(|item| item.key() != key);
            if items.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    /// The objects of `group`, in the order they were added.
    pub fn get<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a Arc<T>> + 'a {
        self.groups.get(group).into_iter().flatten()
    }

    /// The groups that hold at least one object.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(|group| &**group)
    }
}

/// One shared copy of each string many objects repeat (the owner of a million API keys is one
/// of a few hundred thousand identities).
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
}

impl Interner {
    pub fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(found) = self.strings.get(value) {
            return Arc::clone(found);
        }
        let interned: Arc<str> = Arc::from(value);
        self.strings.insert(Arc::clone(&interned));
        interned
    }

    /// Forgets `value` once nothing but the interner and the caller's `value` hold it.
    pub fn release(&mut self, value: Arc<str>) {
        if Arc::strong_count(&value) <= 2 {
            self.strings.remove(&*value);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Item {
        id: &'static str,
        hash: u8,
    }

    impl Keyed for Item {
        fn key(&self) -> &str {
            self.id
        }
    }

    impl Hashed for Item {
        fn secret_hash(&self) -> &KeyHash {
            // One static hash per value used in these tests.
            const HASHES: [KeyHash; 3] = [KeyHash([0; 32]), KeyHash([1; 32]), KeyHash([2; 32])];
            &HASHES[usize::from(self.hash)]
        }
    }

    #[test]
    fn a_table_replaces_by_key_and_finds_by_borrowed_key() {
        let mut table = Table::default();
        table.insert(Arc::new(Item { id: "a", hash: 0 }));
        table.insert(Arc::new(Item { id: "a", hash: 1 }));
        table.insert(Arc::new(Item { id: "b", hash: 2 }));
        assert_eq!(table.len(), 2);
        assert_eq!(table.get("a").map(|i| i.hash), Some(1));
        assert!(table.contains_key("b"));
        assert_eq!(table.remove("a").map(|i| i.hash), Some(1));
        assert!(table.get("a").is_none());
        assert!(table.remove("a").is_none());
    }

    #[test]
    fn a_hash_table_removes_only_the_object_that_holds_the_hash() {
        let mut by_hash = HashTable::default();
        let old = Arc::new(Item { id: "old", hash: 1 });
        let new = Arc::new(Item { id: "new", hash: 1 });
        by_hash.insert(Arc::clone(&old));
        by_hash.insert(Arc::clone(&new));
        by_hash.remove(&old);
        assert_eq!(by_hash.get(&KeyHash([1; 32])).map(|i| i.id), Some("new"));
        by_hash.remove(&new);
        assert!(by_hash.get(&KeyHash([1; 32])).is_none());
    }

    #[test]
    fn an_index_drops_empty_groups() {
        let mut index = Index::default();
        let a = Arc::new(Item { id: "a", hash: 0 });
        let b = Arc::new(Item { id: "b", hash: 0 });
        index.add("g", &a);
        index.add("g", &b);
        index.remove("g", "a");
        assert_eq!(index.get("g").map(|i| i.id).collect::<Vec<_>>(), ["b"]);
        index.remove("g", "b");
        assert_eq!(index.groups().count(), 0);
    }

    #[test]
    fn the_interner_shares_and_forgets() {
        let mut interner = Interner::default();
        let one = interner.intern("IBMid-1");
        let two = interner.intern("IBMid-1");
        assert!(Arc::ptr_eq(&one, &two));
        interner.release(one);
        assert_eq!(interner.len(), 1, "still held by `two`");
        interner.release(two);
        assert_eq!(interner.len(), 0);
    }
}
