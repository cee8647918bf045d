//! A table of a write transaction, opened the first time an op uses it.
//!
//! A writer batch may touch any of two dozen tables, but a batch of sends touches five.
//! redb looks a table up in its table tree when it is opened and again at commit for every
//! table still open, so a batch that opened them all paid for the two dozen on every commit:
//! at office rates, where a batch is a handful of sends, that was a tenth of the writer's time.

use std::borrow::Borrow;
use std::cell::OnceCell;
use std::ops::RangeBounds;

use redb::{
    AccessGuard, Key, Range, ReadableTable, Table, TableDefinition, Value, WriteTransaction,
};

use super::Result;

pub(super) struct LazyTable<'txn, K: Key + 'static, V: Value + 'static> {
    txn: &'txn WriteTransaction,
    definition: TableDefinition<'static, K, V>,
    table: OnceCell<Table<'txn, K, V>>,
}

impl<'txn, K: Key + 'static, V: Value + 'static> LazyTable<'txn, K, V> {
    pub(super) fn new(
        txn: &'txn WriteTransaction,
        definition: TableDefinition<'static, K, V>,
    ) -> Self {
        LazyTable {
            txn,
            definition,
            table: OnceCell::new(),
        }
    }

    /// The open table, for reading (and for helpers that take a `ReadableTable`).
    pub(super) fn table(&self) -> Result<&Table<'txn, K, V>> {
        if let Some(table) = self.table.get() {
            return Ok(table);
        }
        let opened = self.txn.open_table(self.definition)?;
        Ok(self.table.get_or_init(|| opened))
    }

    /// The open table, for writing.
    pub(super) fn table_mut(&mut self) -> Result<&mut Table<'txn, K, V>> {
        self.table()?;
        Ok(self.table.get_mut().expect("table() has just opened it"))
    }

    pub(super) fn get<'a>(
        &self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<AccessGuard<'_, V>>> {
        Ok(self.table()?.get(key)?)
    }

    pub(super) fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        Ok(self.table()?.range(range)?)
    }

    /// Inserts or replaces; unlike redb's `insert`, the old value is not returned.
    pub(super) fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<()> {
        self.table_mut()?.insert(key, value)?;
        Ok(())
    }

    pub(super) fn remove<'a>(
        &mut self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<AccessGuard<'_, V>>> {
        Ok(self.table_mut()?.remove(key)?)
    }
}
