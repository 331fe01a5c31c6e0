//! Contracts ("chaincode"): the interface a contract implements and the built-in contracts.
//!
//! A contract runs on a peer during endorsement. It sees the ledger only through a [`Stub`],
//! which reads committed state and records every read and write; the recorded read/write set
//! is what peers later validate and apply. Contracts are a Rust trait so that other runtimes
//! (WASM) can be added behind the same interface.

mod asset;
mod example02;

pub use asset::Asset;
pub use example02::Example02;

/// A contract's refusal: a message for the user, returned with status 500 as Fabric does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContractError(pub String);

impl ContractError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

pub type ContractResult = Result<Vec<u8>, ContractError>;

/// The ledger as a contract sees it: one namespace (the deployed contract's name).
///
/// Reads return committed state: a contract does not see its own writes of the same
/// transaction (as in Fabric).
pub trait Stub {
    fn get_state(&mut self, key: &str) -> Result<Option<Vec<u8>>, ContractError>;
    fn put_state(&mut self, key: &str, value: Vec<u8>) -> Result<(), ContractError>;
    fn del_state(&mut self, key: &str) -> Result<(), ContractError>;
    /// Keys in `[start, end)` in key order; an empty `end` means no upper bound.
    fn get_state_by_range(
        &mut self,
        start: &str,
        end: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ContractError>;
    fn tx_id(&self) -> &str;
}

/// A contract. `init` runs once, when the contract is deployed on a channel; `invoke` runs for
/// every proposal, queries included (a query is an invoke whose result is not ordered).
pub trait Contract: Send + Sync {
    fn init(&self, stub: &mut dyn Stub, args: &[String]) -> ContractResult;
    fn invoke(&self, stub: &mut dyn Stub, function: &str, args: &[String]) -> ContractResult;
}

/// Names of the built-in contracts, for error messages.
pub const BUILTIN: &[&str] = &["example02", "asset"];

/// The built-in contract called `name`.
pub fn builtin(name: &str) -> Option<&'static dyn Contract> {
    match name {
        "example02" => Some(&Example02),
        "asset" => Some(&Asset),
        _ => None,
    }
}

/// The arguments as an array of `N`, or an error saying what `function` expects.
pub fn expect_args<'a, const N: usize>(
    function: &str,
    args: &'a [String],
    usage: &str,
) -> Result<[&'a str; N], ContractError> {
    if args.len() != N {
        let plural = if N == 1 { "" } else { "s" };
        return Err(ContractError::new(format!(
            "{function} needs {N} argument{plural}: {usage}; got {}",
            args.len()
        )));
    }
    Ok(std::array::from_fn(|i| args[i].as_str()))
}

/// A key must be usable in every store and on every command line.
pub fn check_key(key: &str) -> Result<(), ContractError> {
    if key.is_empty() {
        return Err(ContractError::new("key must not be empty"));
    }
    if key.len() > 1024 {
        return Err(ContractError::new(format!(
            "key of {} bytes is longer than 1024",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(ContractError::new("key must not contain a NUL character"));
    }
    Ok(())
}

/// A stub over an in-memory map, for contract unit tests.
#[cfg(test)]
pub mod memstub {
    use std::collections::BTreeMap;

    use super::{ContractError, Stub};

    #[derive(Default)]
    pub struct MemStub {
        pub state: BTreeMap<String, Vec<u8>>,
        pub writes: BTreeMap<String, Option<Vec<u8>>>,
    }

    impl MemStub {
        /// Applies the recorded writes, as a commit would.
        pub fn commit(&mut self) {
            for (k, v) in std::mem::take(&mut self.writes) {
                match v {
                    Some(v) => self.state.insert(k, v),
                    None => self.state.remove(&k),
                };
            }
        }
    }

    impl Stub for MemStub {
        fn get_state(&mut self, key: &str) -> Result<Option<Vec<u8>>, ContractError> {
            Ok(self.state.get(key).cloned())
        }
        fn put_state(&mut self, key: &str, value: Vec<u8>) -> Result<(), ContractError> {
            self.writes.insert(key.to_string(), Some(value));
            Ok(())
        }
        fn del_state(&mut self, key: &str) -> Result<(), ContractError> {
            self.writes.insert(key.to_string(), None);
            Ok(())
        }
        fn get_state_by_range(
            &mut self,
            start: &str,
            end: &str,
        ) -> Result<Vec<(String, Vec<u8>)>, ContractError> {
            Ok(self
                .state
                .range(start.to_string()..)
                .take_while(|(k, _)| end.is_empty() || k.as_str() < end)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
        fn tx_id(&self) -> &str {
            "test-tx"
        }
    }
}
