//! `asset`: a plain key/value contract.
//!
//! `put KEY VALUE` stores a value, `get KEY` returns it, `delete KEY` removes it and
//! `range START END` lists the keys in `[START, END)` as a JSON array of
//! `{"key": .., "value": ..}` objects (an empty END means no upper bound). It needs no setup,
//! so `init` takes no arguments.

use serde::Serialize;

use super::{check_key, expect_args, Contract, ContractError, ContractResult, Stub};

pub struct Asset;

const FUNCTIONS: &str = "put, get, delete, range";

/// One entry of a `range` answer.
#[derive(Serialize)]
struct Entry {
    key: String,
    value: String,
}

impl Contract for Asset {
    fn init(&self, _stub: &mut dyn Stub, args: &[String]) -> ContractResult {
        if !args.is_empty() {
            return Err(ContractError::new(format!(
                "asset init takes no arguments; got {}",
                args.len()
            )));
        }
        Ok(Vec::new())
    }

    fn invoke(&self, stub: &mut dyn Stub, function: &str, args: &[String]) -> ContractResult {
        match function {
            "put" => {
                let [key, value] = expect_args(function, args, "KEY VALUE")?;
                check_key(key)?;
                stub.put_state(key, value.as_bytes().to_vec())?;
                Ok(Vec::new())
            }
            "get" => {
                let [key] = expect_args(function, args, "KEY")?;
                check_key(key)?;
                existing(stub, key)
            }
            "delete" => {
                let [key] = expect_args(function, args, "KEY")?;
                check_key(key)?;
                // Refuse a missing key rather than silently succeed: a typo should show.
                existing(stub, key)?;
                stub.del_state(key)?;
                Ok(Vec::new())
            }
            "range" => {
                let [start, end] = expect_args(function, args, "START END (END may be empty)")?;
                // Empty bounds are allowed here: an empty START is the first key, an empty
                // END is no upper bound; other bounds must be valid keys.
                for bound in [start, end] {
                    if !bound.is_empty() {
                        check_key(bound)?;
                    }
                }
                let entries: Vec<Entry> = stub
                    .get_state_by_range(start, end)?
                    .into_iter()
                    .map(|(key, value)| Entry {
                        key,
                        value: String::from_utf8_lossy(&value).into_owned(),
                    })
                    .collect();
                serde_json::to_vec(&entries)
                    .map_err(|e| ContractError::new(format!("cannot encode range as JSON: {e}")))
            }
            _ => Err(ContractError::new(format!(
                "unknown function \"{function}\"; asset knows {FUNCTIONS}"
            ))),
        }
    }
}

/// The committed value of `key`, or an error naming the missing asset.
fn existing(stub: &mut dyn Stub, key: &str) -> ContractResult {
    stub.get_state(key)?
        .ok_or_else(|| ContractError::new(format!("asset \"{key}\" does not exist")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaincode::memstub::MemStub;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn call(stub: &mut MemStub, function: &str, a: &[&str]) -> ContractResult {
        Asset.invoke(stub, function, &args(a))
    }

    fn range(stub: &mut MemStub, start: &str, end: &str) -> serde_json::Value {
        let out = call(stub, "range", &[start, end]).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn put_get_delete_round_trip() {
        let mut stub = MemStub::default();
        assert!(Asset.init(&mut stub, &[]).unwrap().is_empty());
        call(&mut stub, "put", &["car1", "red"]).unwrap();
        stub.commit();
        assert_eq!(call(&mut stub, "get", &["car1"]).unwrap(), b"red");
        call(&mut stub, "delete", &["car1"]).unwrap();
        stub.commit();
        let e = call(&mut stub, "get", &["car1"]).unwrap_err().0;
        assert_eq!(e, "asset \"car1\" does not exist");
    }

    #[test]
    fn range_lists_keys_in_order() {
        let mut stub = MemStub::default();
        for (k, v) in [("b", "2"), ("a", "1"), ("c", "3")] {
            call(&mut stub, "put", &[k, v]).unwrap();
        }
        stub.commit();
        assert_eq!(
            range(&mut stub, "a", "c"),
            serde_json::json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        );
        // An empty end means no upper bound.
        assert_eq!(
            range(&mut stub, "b", ""),
            serde_json::json!([{"key": "b", "value": "2"}, {"key": "c", "value": "3"}])
        );
        assert_eq!(range(&mut stub, "x", ""), serde_json::json!([]));
    }

    #[test]
    fn missing_key_refused() {
        let mut stub = MemStub::default();
        let e = call(&mut stub, "get", &["k"]).unwrap_err().0;
        assert_eq!(e, "asset \"k\" does not exist");
        let e = call(&mut stub, "delete", &["k"]).unwrap_err().0;
        assert_eq!(e, "asset \"k\" does not exist");
        assert!(stub.writes.is_empty());
    }

    #[test]
    fn bad_calls_refused() {
        let mut stub = MemStub::default();
        let e = Asset.init(&mut stub, &args(&["x"])).unwrap_err().0;
        assert!(e.contains("init takes no arguments"), "{e}");
        let e = call(&mut stub, "put", &["k"]).unwrap_err().0;
        assert!(e.starts_with("put needs 2 arguments: KEY VALUE"), "{e}");
        let e = call(&mut stub, "put", &["", "v"]).unwrap_err().0;
        assert!(e.contains("empty"), "{e}");
        let e = call(&mut stub, "foo", &[]).unwrap_err().0;
        assert_eq!(
            e,
            "unknown function \"foo\"; asset knows put, get, delete, range"
        );
        assert!(stub.writes.is_empty());
    }
}
