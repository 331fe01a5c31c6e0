//! Fabric signature policies, e.g. `AND('Org1MSP.admin', OR('Org2MSP.peer', 'Org3MSP.peer'))`.
//!
//! Policies are written by operators in channel configuration, so parse errors say where
//! (column) and what was expected. Evaluation follows Fabric: each signer satisfies at most
//! one principal, so `AND('A.member', 'A.member')` needs two different members of A.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;

use super::{IdentityError, Role, VerifiedIdentity};

/// Nesting limit, so a hostile or broken policy string cannot overflow the stack.
const MAX_DEPTH: usize = 32;
/// Search-step limit for `evaluate`; exceeding it fails closed (not satisfied).
const EVAL_BUDGET: usize = 100_000;

/// Who a policy leaf accepts from an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// Any valid identity of the organisation, whatever its role.
    Member,
    Admin,
    Client,
    Peer,
    Orderer,
}

impl Principal {
    pub const ALL: [Principal; 5] = [
        Principal::Member,
        Principal::Admin,
        Principal::Client,
        Principal::Peer,
        Principal::Orderer,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Principal::Member => "member",
            Principal::Admin => "admin",
            Principal::Client => "client",
            Principal::Peer => "peer",
            Principal::Orderer => "orderer",
        }
    }

    /// Whether an identity with this role (from its certificate OU) satisfies the principal.
    pub fn matches(&self, role: Option<Role>) -> bool {
        match self {
            Principal::Member => true,
            Principal::Admin => role == Some(Role::Admin),
            Principal::Client => role == Some(Role::Client),
            Principal::Peer => role == Some(Role::Peer),
            Principal::Orderer => role == Some(Role::Orderer),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Principal {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Principal::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                IdentityError::Policy(format!(
                    "unknown role '{s}': expected one of member, admin, client, peer, orderer"
                ))
            })
    }
}

/// A signature policy: a tree of "n out of these rules" over signed-by leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    SignedBy {
        msp_id: String,
        principal: Principal,
    },
    OutOf {
        n: usize,
        rules: Vec<Policy>,
    },
}

impl Policy {
    /// Fabric semantics: each identity may satisfy at most one leaf (so AND('A.member','A.member')
    /// needs two distinct identities). Identities with the same MSP and public key count once.
    /// Uses a backtracking search, so an identity is never "used up" by the wrong leaf.
    pub fn evaluate(&self, identities: &[&VerifiedIdentity]) -> bool {
        // Identities matter to leaves only through (msp, role): group them into classes
        // with counts, which keeps the search tiny even with many signers.
        let mut seen = HashSet::new();
        let mut classes: Vec<(&str, Option<Role>)> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        for id in identities {
            if !seen.insert((id.msp_id.as_str(), id.public_key())) {
                continue;
            }
            let class = (id.msp_id.as_str(), id.role);
            match classes.iter().position(|c| *c == class) {
                Some(i) => counts[i] += 1,
                None => {
                    classes.push(class);
                    counts.push(1);
                }
            }
        }
        let mut budget = EVAL_BUDGET;
        eval(self, &classes, &mut counts, &mut budget, &mut |_, _| true)
    }

    /// Every MSP id named anywhere in the policy.
    pub fn msp_ids(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_msp_ids(&mut out);
        out
    }

    fn collect_msp_ids(&self, out: &mut BTreeSet<String>) {
        match self {
            Policy::SignedBy { msp_id, .. } => {
                out.insert(msp_id.clone());
            }
            Policy::OutOf { rules, .. } => rules.iter().for_each(|r| r.collect_msp_ids(out)),
        }
    }
}

type Classes<'a> = [(&'a str, Option<Role>)];
type Cont<'k> = dyn FnMut(&mut [usize], &mut usize) -> bool + 'k;

/// Continuation-passing backtracking: `k` is "the rest of the policy must also hold with
/// what is left"; a choice is undone if the rest fails.
fn eval(
    p: &Policy,
    classes: &Classes<'_>,
    left: &mut [usize],
    budget: &mut usize,
    k: &mut Cont<'_>,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match p {
        Policy::SignedBy { msp_id, principal } => {
            for (i, (msp, role)) in classes.iter().enumerate() {
                if left[i] == 0 || *msp != msp_id.as_str() || !principal.matches(*role) {
                    continue;
                }
                left[i] -= 1;
                let ok = k(left, budget);
                left[i] += 1;
                if ok {
                    return true;
                }
                if *budget == 0 {
                    return false;
                }
            }
            false
        }
        Policy::OutOf { n, rules } => pick(rules, 0, *n, classes, left, budget, k),
    }
}

/// Satisfy `need` more of `rules[start..]`, then the continuation.
fn pick(
    rules: &[Policy],
    start: usize,
    need: usize,
    classes: &Classes<'_>,
    left: &mut [usize],
    budget: &mut usize,
    k: &mut Cont<'_>,
) -> bool {
    if need == 0 {
        return k(left, budget);
    }
    if rules.len().saturating_sub(start) < need {
        return false;
    }
    for j in start..=rules.len() - need {
        let mut rest =
            |l: &mut [usize], b: &mut usize| pick(rules, j + 1, need - 1, classes, l, b, k);
        if eval(&rules[j], classes, left, budget, &mut rest) {
            return true;
        }
        if *budget == 0 {
            return false;
        }
    }
    false
}

impl fmt::Display for Policy {
    /// Canonical form: AND when all rules are needed, OR when one is, else OutOf;
    /// leaves as `'MSP.role'`. Parses back to the same policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::SignedBy { msp_id, principal } => write!(f, "'{msp_id}.{principal}'"),
            Policy::OutOf { n, rules } => {
                if *n == rules.len() && rules.len() > 1 {
                    f.write_str("AND(")?;
                } else if *n == 1 {
                    f.write_str("OR(")?;
                } else {
                    write!(f, "OutOf({n}")?;
                    if !rules.is_empty() {
                        f.write_str(", ")?;
                    }
                }
                for (i, r) in rules.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{r}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl FromStr for Policy {
    type Err = IdentityError;

    /// Grammar: `AND(p, ...)`, `OR(p, ...)`, `OutOf(n, p, ...)`, leaf `'MSPID.role'` (single or
    /// double quotes, role one of member/admin/client/peer/orderer). Keywords and roles are
    /// case-insensitive; whitespace is allowed between tokens.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut p = Parser {
            input: s,
            chars: s.chars().collect(),
            pos: 0,
            depth: 0,
        };
        if s.trim().is_empty() {
            return Err(IdentityError::Policy(
                "empty policy: expected AND(...), OR(...), OutOf(n, ...) or a principal like 'Org1MSP.member'".into(),
            ));
        }
        let policy = p.policy()?;
        if p.peek().is_some() {
            return Err(p.expected("end of policy"));
        }
        Ok(policy)
    }
}

impl serde::Serialize for Policy {
    /// As its canonical string, so configuration files hold readable policies.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, msg: String) -> IdentityError {
        IdentityError::Policy(format!("{:?}: {msg}", self.input))
    }

    /// 1-based column of the current position.
    fn col(&self) -> usize {
        self.pos + 1
    }

    /// Next non-whitespace character, without consuming it.
    fn peek(&mut self) -> Option<char> {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
        self.chars.get(self.pos).copied()
    }

    fn expected(&mut self, what: &str) -> IdentityError {
        let found = match self.peek() {
            None => "end of input".to_string(),
            Some(c) => format!("'{c}'"),
        };
        self.err(format!(
            "expected {what} at column {}, found {found}",
            self.col()
        ))
    }

    fn policy(&mut self) -> Result<Policy, IdentityError> {
        match self.peek() {
            Some('\'' | '"') => self.leaf(),
            Some(c) if c.is_alphabetic() => self.gate(),
            _ => Err(self.expected(
                "a policy (AND(...), OR(...), OutOf(n, ...) or a quoted principal like 'Org1MSP.member')",
            )),
        }
    }

    fn leaf(&mut self) -> Result<Policy, IdentityError> {
        let start = self.col();
        let quote = self.chars[self.pos];
        self.pos += 1;
        let mut content = String::new();
        loop {
            match self.chars.get(self.pos) {
                None => {
                    return Err(self.err(format!(
                        "unterminated quote: {quote} opened at column {start} is never closed"
                    )))
                }
                Some(&c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some(&c) => {
                    content.push(c);
                    self.pos += 1;
                }
            }
        }
        let content = content.trim();
        let Some((msp_id, role)) = content.rsplit_once('.') else {
            return Err(self.err(format!(
                "principal '{content}' at column {start} must be 'MSPID.role', e.g. 'Org1MSP.peer'"
            )));
        };
        if msp_id.is_empty() {
            return Err(self.err(format!(
                "principal '{content}' at column {start} has an empty MSP id"
            )));
        }
        if let Some(bad) = msp_id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(self.err(format!(
                "MSP id '{msp_id}' at column {start} contains '{bad}': only letters, digits, '.', '-' and '_' are allowed"
            )));
        }
        let principal = role.parse::<Principal>().map_err(|_| {
            self.err(format!(
                "unknown role '{role}' in principal '{content}' at column {start}: expected one of member, admin, client, peer, orderer"
            ))
        })?;
        Ok(Policy::SignedBy {
            msp_id: msp_id.to_string(),
            principal,
        })
    }

    fn gate(&mut self) -> Result<Policy, IdentityError> {
        let start = self.col();
        let mut word = String::new();
        while let Some(&c) = self.chars.get(self.pos) {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            word.push(c);
            self.pos += 1;
        }
        let kw = match word.to_ascii_lowercase().as_str() {
            "and" => "AND",
            "or" => "OR",
            "outof" => "OutOf",
            _ => {
                return Err(self.err(format!(
                    "unknown operator '{word}' at column {start}: expected AND, OR or OutOf \
                     (principals must be quoted, e.g. 'Org1MSP.member')"
                )))
            }
        };
        if self.peek() != Some('(') {
            return Err(self.expected(&format!("'(' after {kw}")));
        }
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!(
                "policy nested more than {MAX_DEPTH} levels deep at column {start}"
            )));
        }

        let n = if kw == "OutOf" {
            let n = self.count()?;
            if self.peek() != Some(',') {
                return Err(self.expected("',' after the OutOf count"));
            }
            self.pos += 1;
            Some(n)
        } else {
            None
        };

        let mut rules = Vec::new();
        loop {
            rules.push(self.policy()?);
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.expected("',' or ')'")),
            }
        }
        self.depth -= 1;

        let n = match kw {
            "OR" => 1,
            // AND; OutOf always has its count.
            _ => n.unwrap_or(rules.len()),
        };
        if n == 0 {
            return Err(self.err(format!(
                "OutOf at column {start} has count 0, which anyone satisfies: use at least 1"
            )));
        }
        if n > rules.len() {
            return Err(self.err(format!(
                "OutOf at column {start} requires {n} rules but lists only {}",
                rules.len()
            )));
        }
        Ok(Policy::OutOf { n, rules })
    }

    fn count(&mut self) -> Result<usize, IdentityError> {
        self.peek();
        let start = self.col();
        let mut digits = String::new();
        while let Some(&c) = self.chars.get(self.pos) {
            if !c.is_ascii_digit() {
                break;
            }
            digits.push(c);
            self.pos += 1;
        }
        if digits.is_empty() {
            return Err(self.expected("a number (how many of the rules must be satisfied)"));
        }
        digits.parse().map_err(|_| {
            self.err(format!(
                "OutOf count {digits} at column {start} is too large"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(msp: &str, p: Principal) -> Policy {
        Policy::SignedBy {
            msp_id: msp.into(),
            principal: p,
        }
    }

    fn id(msp: &str, role: Option<Role>, cn: &str) -> VerifiedIdentity {
        VerifiedIdentity::for_test(msp, role, cn)
    }

    fn err(s: &str) -> String {
        match s.parse::<Policy>() {
            Ok(p) => panic!("{s:?} parsed as {p:?}"),
            Err(e) => {
                assert!(matches!(e, IdentityError::Policy(_)), "{e:?}");
                e.to_string()
            }
        }
    }

    #[test]
    fn parses_nested_policies_case_insensitively() {
        let p: Policy = " and ( 'Org1MSP.admin' ,Or(\"Org2MSP.peer\", 'Org3MSP.PEER'),\n\toutof(1,'A.member') ) "
            .parse()
            .unwrap();
        assert_eq!(
            p,
            Policy::OutOf {
                n: 3,
                rules: vec![
                    leaf("Org1MSP", Principal::Admin),
                    Policy::OutOf {
                        n: 1,
                        rules: vec![
                            leaf("Org2MSP", Principal::Peer),
                            leaf("Org3MSP", Principal::Peer)
                        ],
                    },
                    Policy::OutOf {
                        n: 1,
                        rules: vec![leaf("A", Principal::Member)],
                    },
                ],
            }
        );
        assert_eq!(
            p.msp_ids().into_iter().collect::<Vec<_>>(),
            ["A", "Org1MSP", "Org2MSP", "Org3MSP"]
        );
        // A bare leaf is a policy; MSP ids may contain dots (the role is after the last one).
        assert_eq!(
            "'org1.example.com.client'".parse::<Policy>().unwrap(),
            leaf("org1.example.com", Principal::Client)
        );
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for s in [
            "AND('Org1MSP.admin', OR('Org2MSP.peer', 'Org3MSP.peer'))",
            "OutOf(2, 'A.member', 'B.member', 'C.orderer')",
            "OR('A.client')",
            "'A.member'",
        ] {
            let p: Policy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(p.to_string().parse::<Policy>().unwrap(), p);
        }
        let p: Policy = "outof(2,\"A.peer\",'B.peer')".parse().unwrap();
        assert_eq!(p.to_string(), "AND('A.peer', 'B.peer')");
    }

    #[test]
    fn serde_uses_the_string_form() {
        let p: Policy = "OR('A.peer', 'B.peer')".parse().unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"OR('A.peer', 'B.peer')\"");
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
        let e = serde_json::from_str::<Policy>("\"OR('A.boss')\"").unwrap_err();
        assert!(e.to_string().contains("unknown role 'boss'"), "{e}");
    }

    #[test]
    fn errors_name_position_and_expectation() {
        let e = err("AND('Org1MSP.peer'");
        assert!(
            e.contains("expected ',' or ')' at column 19, found end of input"),
            "{e}"
        );
        let e = err("AND('Org1MSP.peer' 'Org2MSP.peer')");
        assert!(
            e.contains("expected ',' or ')' at column 20, found '''"),
            "{e}"
        );
        let e = err("AND 'A.peer')");
        assert!(e.contains("expected '(' after AND at column 5"), "{e}");
        let e = err("XOR('A.peer')");
        assert!(e.contains("unknown operator 'XOR' at column 1"), "{e}");
        let e = err("AND()");
        assert!(
            e.contains("expected a policy") && e.contains("column 5, found ')'"),
            "{e}"
        );
        let e = err("OR('A.peer',)");
        assert!(e.contains("column 13, found ')'"), "{e}");
        let e = err("'A.peer' extra");
        assert!(e.contains("expected end of policy at column 10"), "{e}");
        let e = err("OR('A.peer)");
        assert!(
            e.contains("unterminated quote") && e.contains("column 4"),
            "{e}"
        );
        let e = err("OutOf('A.peer')");
        assert!(e.contains("expected a number"), "{e}");
        let e = err("OutOf(1 'A.peer')");
        assert!(
            e.contains("expected ',' after the OutOf count at column 9"),
            "{e}"
        );
        let e = err("OutOf(99999999999999999999999, 'A.peer')");
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn bad_principals_are_explained() {
        let e = err("OR('Org1MSP.boss')");
        assert!(e.contains("unknown role 'boss'"), "{e}");
        assert!(e.contains("member, admin, client, peer, orderer"), "{e}");
        assert!(e.contains("column 4"), "{e}");
        let e = err("'Org1MSP'");
        assert!(e.contains("must be 'MSPID.role'"), "{e}");
        let e = err("'.peer'");
        assert!(e.contains("empty MSP id"), "{e}");
        let e = err("'Org 1.peer'");
        assert!(e.contains("contains ' '"), "{e}");
    }

    #[test]
    fn outof_counts_are_checked() {
        let e = err("OutOf(3, 'A.peer', 'B.peer')");
        assert!(e.contains("requires 3 rules but lists only 2"), "{e}");
        let e = err("OutOf(0, 'A.peer')");
        assert!(e.contains("count 0"), "{e}");
    }

    #[test]
    fn empty_and_deep_policies_are_rejected() {
        assert!(err("").contains("empty policy"));
        assert!(err("   \n").contains("empty policy"));
        let deep = format!("{}'A.peer'{}", "OR(".repeat(100), ")".repeat(100));
        assert!(err(&deep).contains("nested more than"));
    }

    #[test]
    fn evaluate_matches_roles() {
        let p: Policy = "AND('A.admin', OR('B.peer', 'C.peer'))".parse().unwrap();
        let a_admin = id("A", Some(Role::Admin), "a-admin");
        let a_client = id("A", Some(Role::Client), "a-client");
        let b_peer = id("B", Some(Role::Peer), "b-peer");
        let c_peer = id("C", Some(Role::Peer), "c-peer");
        let b_client = id("B", Some(Role::Client), "b-client");
        assert!(p.evaluate(&[&a_admin, &b_peer]));
        assert!(p.evaluate(&[&c_peer, &a_admin]));
        assert!(!p.evaluate(&[&a_admin]));
        assert!(!p.evaluate(&[&a_client, &b_peer]));
        assert!(!p.evaluate(&[&a_admin, &b_client]));
        assert!(!p.evaluate(&[]));
        // member matches any role, and identities without a role OU.
        let m: Policy = "'B.member'".parse().unwrap();
        assert!(m.evaluate(&[&b_client]));
        assert!(m.evaluate(&[&id("B", None, "x")]));
        assert!(!m.evaluate(&[&a_admin]));
    }

    #[test]
    fn each_identity_satisfies_at_most_one_leaf() {
        let p: Policy = "AND('A.member', 'A.member')".parse().unwrap();
        let a1 = id("A", Some(Role::Peer), "a1");
        let a2 = id("A", Some(Role::Client), "a2");
        assert!(!p.evaluate(&[&a1]));
        // The same identity twice is still one signer.
        assert!(!p.evaluate(&[&a1, &a1.clone()]));
        assert!(p.evaluate(&[&a1, &a2]));
    }

    #[test]
    fn backtracking_finds_assignment_greedy_would_miss() {
        // The admin also matches 'A.member'; a greedy search that gives it to the first leaf
        // would fail the second. Only admin→admin, peer→member works.
        let p: Policy = "AND('A.member', 'A.admin')".parse().unwrap();
        let admin = id("A", Some(Role::Admin), "admin");
        let peer = id("A", Some(Role::Peer), "peer");
        assert!(p.evaluate(&[&admin, &peer]));
        let p: Policy = "OutOf(2, OR('A.member', 'B.member'), 'A.admin', 'B.peer')"
            .parse()
            .unwrap();
        let b_client = id("B", Some(Role::Client), "bc");
        assert!(p.evaluate(&[&admin, &b_client]));
        assert!(!p.evaluate(&[&admin]));
    }

    #[test]
    fn many_signers_stay_fast_and_correct() {
        let ids: Vec<VerifiedIdentity> = (0..500)
            .map(|i| id("A", Some(Role::Peer), &format!("peer{i}")))
            .collect();
        let refs: Vec<&VerifiedIdentity> = ids.iter().collect();
        let need_ten = format!("AND({})", ["'A.peer'"; 10].join(", "));
        let p: Policy = need_ten.parse().unwrap();
        assert!(p.evaluate(&refs));
        let impossible = format!("AND({}, 'B.peer')", ["'A.member'"; 20].join(", "));
        let p: Policy = impossible.parse().unwrap();
        assert!(!p.evaluate(&refs));
    }
}
