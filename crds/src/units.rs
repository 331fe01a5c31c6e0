//! Durations and sizes as manifests write them: `100ms`, `2s`, `5m`, `8760h`; `512Ki`, `2Mi`,
//! `1Gi`, `4096`.
//!
//! The patterns are the ones the CRD schema carries, so a value the API server accepts is a value
//! these functions parse, and the other way round.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

/// A duration: a whole number followed by `ms`, `s`, `m` (minutes) or `h` (hours).
pub const DURATION_PATTERN: &str = "^[0-9]+(ms|s|m|h)$";

/// A size: a whole number of bytes, optionally with a binary suffix `Ki`, `Mi` or `Gi`
/// (the Kubernetes quantity suffixes; `2Mi` is 2 × 1024 × 1024 bytes).
pub const SIZE_PATTERN: &str = "^[0-9]+(Ki|Mi|Gi)?$";

static DURATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(DURATION_PATTERN).expect("DURATION_PATTERN is a valid regex"));
static SIZE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(SIZE_PATTERN).expect("SIZE_PATTERN is a valid regex"));

/// Parses a duration such as `100ms`, `2s`, `5m` or `8760h`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(raftnet_crds::units::parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert!(raftnet_crds::units::parse_duration("5 seconds").is_err());
/// ```
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    if !DURATION.is_match(value) {
        return Err(format!(
            "{value:?} is not a duration: expected a whole number followed by ms, s, m or h \
             (e.g. 100ms, 2s, 5m, 8760h)"
        ));
    }
    // The pattern admits only what humantime reads the same way; humantime does the arithmetic
    // and catches overflow.
    humantime::parse_duration(value).map_err(|err| format!("{value:?} is not a duration: {err}"))
}

/// Parses a size such as `512Ki`, `2Mi`, `1Gi` or `4096` into bytes.
///
/// ```
/// assert_eq!(raftnet_crds::units::parse_size("2Mi"), Ok(2 * 1024 * 1024));
/// assert!(raftnet_crds::units::parse_size("10MB").is_err());
/// ```
pub fn parse_size(value: &str) -> Result<u64, String> {
    let expected = "expected a whole number of bytes, optionally followed by Ki, Mi or Gi \
                    (e.g. 4096, 512Ki, 2Mi, 1Gi)";
    let Some(captures) = SIZE.captures(value) else {
        return Err(format!("{value:?} is not a size: {expected}"));
    };
    let digits_end = captures.get(1).map_or(value.len(), |suffix| suffix.start());
    let unit: u64 = match captures.get(1).map(|suffix| suffix.as_str()) {
        None => 1,
        Some("Ki") => 1 << 10,
        Some("Mi") => 1 << 20,
        Some("Gi") => 1 << 30,
        Some(other) => unreachable!("SIZE_PATTERN admits no suffix {other}"),
    };
    value[..digits_end]
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(unit))
        .ok_or_else(|| format!("{value:?} is too large: at most {} bytes", u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        for bad in [
            "",
            "5",
            "5 seconds",
            "1.5s",
            "1d",
            "-1s",
            "1m30s",
            " 5s",
            "5s\n",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("{bad:?} is not a duration")),
                "{err}"
            );
        }
        assert!(parse_duration("5 seconds")
            .unwrap_err()
            .contains("expected a whole number followed by ms, s, m or h"));
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512Ki"), Ok(512 * 1024));
        assert_eq!(parse_size("16Mi"), Ok(16 << 20));
        assert_eq!(parse_size("1Gi"), Ok(1 << 30));
        for bad in ["", "Mi", "10MB", "10M", "1.5Gi", "-1", "2 Mi", "1Ti"] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.starts_with(&format!("{bad:?} is not a size")), "{err}");
        }
        assert!(parse_size("99999999999Gi")
            .unwrap_err()
            .contains("too large"));
    }
}
