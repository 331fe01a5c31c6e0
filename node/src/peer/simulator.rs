//! Runs a contract against committed state and records what it read and wrote: the
//! read/write set that endorsers sign and validators check.

use std::collections::BTreeMap;

use crate::chaincode::{check_key, ContractError, Stub};
use crate::proto::peer::{KvRead, KvWrite, NsReadWriteSet, RangeRead, Version};

use super::statedb::StateReader;

/// A [`Stub`] over one namespace of a state snapshot. Keys are kept sorted, so that every
/// peer with the same state produces byte-identical read/write sets.
pub struct Simulator<'a> {
    state: &'a StateReader,
    ns: String,
    tx_id: String,
    reads: BTreeMap<String, Option<Version>>,
    range_reads: Vec<RangeRead>,
    writes: BTreeMap<String, Option<Vec<u8>>>,
}

fn storage_error(e: anyhow::Error) -> ContractError {
    ContractError::new(format!("state database: {e:#}"))
}

impl<'a> Simulator<'a> {
    pub fn new(state: &'a StateReader, ns: &str, tx_id: &str) -> Self {
        Self {
            state,
            ns: ns.to_string(),
            tx_id: tx_id.to_string(),
            reads: BTreeMap::new(),
            range_reads: Vec::new(),
            writes: BTreeMap::new(),
        }
    }

    pub fn into_rwset(self) -> NsReadWriteSet {
        NsReadWriteSet {
            namespace: self.ns,
            reads: self
                .reads
                .into_iter()
                .map(|(key, version)| KvRead { key, version })
                .collect(),
            range_reads: self.range_reads,
            writes: self
                .writes
                .into_iter()
                .map(|(key, v)| KvWrite {
                    key,
                    is_delete: v.is_none(),
                    value: v.unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl Stub for Simulator<'_> {
    fn get_state(&mut self, key: &str) -> Result<Option<Vec<u8>>, ContractError> {
        check_key(key)?;
        let v = self.state.get(&self.ns, key).map_err(storage_error)?;
        self.reads
            .insert(key.to_string(), v.as_ref().map(|v| v.version));
        Ok(v.map(|v| v.value))
    }

    fn put_state(&mut self, key: &str, value: Vec<u8>) -> Result<(), ContractError> {
        check_key(key)?;
        self.writes.insert(key.to_string(), Some(value));
        Ok(())
    }

    fn del_state(&mut self, key: &str) -> Result<(), ContractError> {
        check_key(key)?;
        self.writes.insert(key.to_string(), None);
        Ok(())
    }

    fn get_state_by_range(
        &mut self,
        start: &str,
        end: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ContractError> {
        let rows = self
            .state
            .range(&self.ns, start, end)
            .map_err(storage_error)?;
        self.range_reads.push(RangeRead {
            start_key: start.to_string(),
            end_key: end.to_string(),
            results: rows
                .iter()
                .map(|(k, v)| KvRead {
                    key: k.clone(),
                    version: Some(v.version),
                })
                .collect(),
        });
        Ok(rows.into_iter().map(|(k, v)| (k, v.value)).collect())
    }

    fn tx_id(&self) -> &str {
        &self.tx_id
    }
}
