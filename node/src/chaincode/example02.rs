//! `example02`: Hyperledger Fabric's chaincode_example02, accounts holding integer balances.
//!
//! `init NAME AMOUNT ...` creates accounts; `invoke FROM TO AMOUNT` (alias `move`) moves an
//! amount between two accounts; `query NAME` returns a balance; `delete NAME` removes an
//! account. Balances are stored as decimal strings, as in Fabric, so that state written by
//! one implementation reads the same in another.

use super::{check_key, expect_args, Contract, ContractError, ContractResult, Stub};

pub struct Example02;

const FUNCTIONS: &str = "invoke, query, delete";

impl Contract for Example02 {
    fn init(&self, stub: &mut dyn Stub, args: &[String]) -> ContractResult {
        // Fabric takes exactly `a 100 b 200`; any number of pairs lets benchmarks create
        // many accounts in one transaction.
        if args.is_empty() || !args.len().is_multiple_of(2) {
            return Err(ContractError::new(format!(
                "init needs pairs of account and amount, e.g. [\"a\",\"100\",\"b\",\"200\"]; \
                 got {} arguments",
                args.len()
            )));
        }
        // Check everything before writing, so that a refused init records no writes.
        let mut accounts: Vec<(&str, i64)> = Vec::with_capacity(args.len() / 2);
        for pair in args.chunks_exact(2) {
            let (name, amount) = (pair[0].as_str(), pair[1].as_str());
            check_account_name(name)?;
            if accounts.iter().any(|(n, _)| *n == name) {
                return Err(ContractError::new(format!(
                    "account \"{name}\" is given more than once"
                )));
            }
            let value: i64 = amount.parse().map_err(|_| {
                ContractError::new(format!(
                    "amount \"{amount}\" for account \"{name}\" is not an integer"
                ))
            })?;
            if value < 0 {
                return Err(ContractError::new(format!(
                    "amount \"{amount}\" for account \"{name}\" is negative"
                )));
            }
            accounts.push((name, value));
        }
        for (name, value) in accounts {
            stub.put_state(name, value.to_string().into_bytes())?;
        }
        Ok(Vec::new())
    }

    fn invoke(&self, stub: &mut dyn Stub, function: &str, args: &[String]) -> ContractResult {
        match function {
            "invoke" | "move" => {
                let [from, to, amount] = expect_args(function, args, "FROM TO AMOUNT")?;
                transfer(stub, from, to, amount)
            }
            "query" => {
                let [name] = expect_args(function, args, "ACCOUNT")?;
                check_account_name(name)?;
                let balance = balance(stub, name)?;
                Ok(balance.to_string().into_bytes())
            }
            "delete" => {
                let [name] = expect_args(function, args, "ACCOUNT")?;
                check_account_name(name)?;
                // Refuse a missing account rather than silently succeed: a typo should show.
                balance(stub, name)?;
                stub.del_state(name)?;
                Ok(Vec::new())
            }
            _ => Err(ContractError::new(format!(
                "unknown function \"{function}\"; example02 knows {FUNCTIONS}"
            ))),
        }
    }
}

/// Moves `amount` from `from` to `to`; returns an empty payload, as Fabric does.
fn transfer(stub: &mut dyn Stub, from: &str, to: &str, amount: &str) -> ContractResult {
    check_account_name(from)?;
    check_account_name(to)?;
    if from == to {
        return Err(ContractError::new(format!(
            "cannot move from account \"{from}\" to itself"
        )));
    }
    let x: i64 = amount
        .parse()
        .map_err(|_| ContractError::new(format!("amount \"{amount}\" is not an integer")))?;
    if x < 0 {
        return Err(ContractError::new(format!(
            "amount \"{amount}\" is negative; move from \"{to}\" to \"{from}\" instead"
        )));
    }
    // Read both accounts before writing either, so a refusal records no writes.
    let a = balance(stub, from)?;
    let b = balance(stub, to)?;
    if a < x {
        return Err(ContractError::new(format!(
            "account \"{from}\" holds {a}, cannot move {x}"
        )));
    }
    let new_a = a
        .checked_sub(x)
        .ok_or_else(|| ContractError::new(format!("balance of account \"{from}\" overflows")))?;
    let new_b = b
        .checked_add(x)
        .ok_or_else(|| ContractError::new(format!("balance of account \"{to}\" overflows")))?;
    stub.put_state(from, new_a.to_string().into_bytes())?;
    stub.put_state(to, new_b.to_string().into_bytes())?;
    Ok(Vec::new())
}

/// The committed balance of `name`; a missing account or a corrupt balance is an error.
fn balance(stub: &mut dyn Stub, name: &str) -> Result<i64, ContractError> {
    let bytes = stub
        .get_state(name)?
        .ok_or_else(|| ContractError::new(format!("account \"{name}\" does not exist")))?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            ContractError::new(format!(
                "account \"{name}\" holds \"{}\", which is not an integer",
                String::from_utf8_lossy(&bytes)
            ))
        })
}

/// An account name must be a valid key; the error says which account was refused.
fn check_account_name(name: &str) -> Result<(), ContractError> {
    check_key(name).map_err(|e| ContractError::new(format!("account name \"{name}\": {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaincode::memstub::MemStub;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// A stub holding the committed result of `init a 100 b 200`.
    fn initialized() -> MemStub {
        let mut stub = MemStub::default();
        Example02
            .init(&mut stub, &args(&["a", "100", "b", "200"]))
            .unwrap();
        stub.commit();
        stub
    }

    fn query(stub: &mut MemStub, name: &str) -> String {
        let out = Example02.invoke(stub, "query", &args(&[name])).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn err(r: ContractResult) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn init_then_query() {
        let mut stub = initialized();
        assert_eq!(query(&mut stub, "a"), "100");
        assert_eq!(query(&mut stub, "b"), "200");
    }

    #[test]
    fn invoke_moves_amount() {
        let mut stub = initialized();
        let out = Example02
            .invoke(&mut stub, "invoke", &args(&["a", "b", "10"]))
            .unwrap();
        assert!(out.is_empty());
        stub.commit();
        assert_eq!(query(&mut stub, "a"), "90");
        assert_eq!(query(&mut stub, "b"), "210");

        // `move` is an alias.
        Example02
            .invoke(&mut stub, "move", &args(&["b", "a", "5"]))
            .unwrap();
        stub.commit();
        assert_eq!(query(&mut stub, "a"), "95");
        assert_eq!(query(&mut stub, "b"), "205");
    }

    #[test]
    fn unknown_account_is_named() {
        let mut stub = initialized();
        let e = err(Example02.invoke(&mut stub, "invoke", &args(&["a", "c", "1"])));
        assert!(e.contains("\"c\""), "{e}");
        assert!(e.contains("does not exist"), "{e}");
        let e = err(Example02.invoke(&mut stub, "query", &args(&["zed"])));
        assert!(e.contains("\"zed\""), "{e}");
        assert!(stub.writes.is_empty());
    }

    #[test]
    fn non_integer_amount_refused() {
        let mut stub = initialized();
        let e = err(Example02.invoke(&mut stub, "invoke", &args(&["a", "b", "ten"])));
        assert!(e.contains("\"ten\" is not an integer"), "{e}");
        let e = err(Example02.invoke(&mut stub, "invoke", &args(&["a", "b", "-3"])));
        assert!(e.contains("negative"), "{e}");

        let mut fresh = MemStub::default();
        let e = err(Example02.init(&mut fresh, &args(&["a", "x"])));
        assert_eq!(e, "amount \"x\" for account \"a\" is not an integer");
        assert!(fresh.writes.is_empty());
    }

    #[test]
    fn overdraft_refused_and_nothing_written() {
        let mut stub = initialized();
        let e = err(Example02.invoke(&mut stub, "invoke", &args(&["a", "b", "101"])));
        assert_eq!(e, "account \"a\" holds 100, cannot move 101");
        assert!(stub.writes.is_empty());
    }

    #[test]
    fn odd_init_args_refused() {
        let mut stub = MemStub::default();
        let e = err(Example02.init(&mut stub, &args(&["a", "100", "b"])));
        assert!(e.contains("pairs of account and amount"), "{e}");
        assert!(e.contains("got 3 arguments"), "{e}");
        let e = err(Example02.init(&mut stub, &[]));
        assert!(e.contains("got 0 arguments"), "{e}");
        assert!(stub.writes.is_empty());
    }

    #[test]
    fn duplicate_init_account_refused() {
        let mut stub = MemStub::default();
        let e = err(Example02.init(&mut stub, &args(&["a", "1", "a", "2"])));
        assert!(e.contains("\"a\""), "{e}");
        assert!(stub.writes.is_empty());
    }

    #[test]
    fn self_move_wrong_count_and_unknown_function_refused() {
        let mut stub = initialized();
        let e = err(Example02.invoke(&mut stub, "invoke", &args(&["a", "a", "1"])));
        assert!(e.contains("itself"), "{e}");
        let e = err(Example02.invoke(&mut stub, "invoke", &args(&["a", "b"])));
        assert!(
            e.starts_with("invoke needs 3 arguments: FROM TO AMOUNT"),
            "{e}"
        );
        let e = err(Example02.invoke(&mut stub, "foo", &[]));
        assert_eq!(
            e,
            "unknown function \"foo\"; example02 knows invoke, query, delete"
        );
        assert!(stub.writes.is_empty());
    }

    #[test]
    fn overflow_refused() {
        let mut stub = MemStub::default();
        let max = i64::MAX.to_string();
        Example02
            .init(&mut stub, &args(&["a", "10", "b", &max]))
            .unwrap();
        stub.commit();
        let e = err(Example02.invoke(&mut stub, "invoke", &args(&["a", "b", "1"])));
        assert!(e.contains("overflows"), "{e}");
        assert!(stub.writes.is_empty());
    }

    #[test]
    fn corrupt_balance_is_named() {
        let mut stub = MemStub::default();
        stub.state.insert("a".into(), b"lots".to_vec());
        let e = err(Example02.invoke(&mut stub, "query", &args(&["a"])));
        assert!(e.contains("account \"a\""), "{e}");
        assert!(e.contains("not an integer"), "{e}");
    }

    #[test]
    fn delete_removes_account() {
        let mut stub = initialized();
        Example02
            .invoke(&mut stub, "delete", &args(&["a"]))
            .unwrap();
        stub.commit();
        let e = err(Example02.invoke(&mut stub, "query", &args(&["a"])));
        assert!(e.contains("does not exist"), "{e}");
        let e = err(Example02.invoke(&mut stub, "delete", &args(&["a"])));
        assert!(e.contains("does not exist"), "{e}");
    }
}
