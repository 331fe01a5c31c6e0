//! Collecting what is wrong with a spec: one message per problem, each starting with the path of
//! the field it is about (`spec.raft.tickInterval: ...`), so that a user can find it in the YAML.

use std::collections::HashMap;
use std::fmt::Display;

use crate::units::{parse_duration, parse_size};

/// The problems found so far; `into_result` turns them into the `validate` result.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    /// Records a problem with the field at `path`.
    pub(crate) fn add(&mut self, path: impl Display, message: impl Display) {
        self.0.push(format!("{path}: {message}"));
    }

    /// Records the error of a check (`names::check_msp_id`, ...) against the field at `path`.
    pub(crate) fn check(&mut self, path: impl Display, result: Result<(), String>) {
        if let Err(message) = result {
            self.add(path, message);
        }
    }

    /// Checks that an integer lies in `min..=max`.
    pub(crate) fn range(&mut self, path: impl Display, value: u64, min: u64, max: u64) -> bool {
        if (min..=max).contains(&value) {
            return true;
        }
        self.add(
            path,
            format!("must be between {min} and {max} (got {value})"),
        );
        false
    }

    /// Checks that an integer is at least `min`.
    pub(crate) fn at_least(&mut self, path: impl Display, value: u64, min: u64) {
        if value < min {
            self.add(path, format!("must be at least {min} (got {value})"));
        }
    }

    /// Checks that a list is not empty.
    pub(crate) fn not_empty<T>(&mut self, path: impl Display, list: &[T], what: &str) {
        if list.is_empty() {
            self.add(path, format!("must list at least one {what}"));
        }
    }

    /// Checks that a string is not empty (nor only blanks).
    pub(crate) fn not_blank(&mut self, path: impl Display, value: &str) {
        if value.trim().is_empty() {
            self.add(path, "must not be empty");
        }
    }

    /// Checks a positive duration (`100ms`, `2s`, `5m`).
    pub(crate) fn positive_duration(&mut self, path: impl Display, value: &str) {
        match parse_duration(value) {
            Ok(duration) if duration.is_zero() => self.add(path, "must be greater than zero"),
            Ok(_) => {}
            Err(message) => self.add(path, message),
        }
    }

    /// Checks a positive size (`512Ki`, `2Mi`, `4096`) and returns it in bytes.
    pub(crate) fn positive_size(&mut self, path: impl Display, value: &str) -> Option<u64> {
        match parse_size(value) {
            Ok(0) => self.add(path, "must be greater than zero"),
            Ok(bytes) => return Some(bytes),
            Err(message) => self.add(path, message),
        }
        None
    }

    pub(crate) fn into_result(self) -> Result<(), Vec<String>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

/// Finds values listed twice, and says where each was first listed.
#[derive(Debug, Default)]
pub(crate) struct Duplicates<'a>(HashMap<&'a str, String>);

impl<'a> Duplicates<'a> {
    pub(crate) fn check(
        &mut self,
        problems: &mut Problems,
        path: String,
        value: &'a str,
        what: &str,
    ) {
        if let Some(first) = self.0.get(value) {
            problems.add(
                &path,
                format!("duplicate {what} {value} (already at {first})"),
            );
        } else {
            self.0.insert(value, path);
        }
    }
}
