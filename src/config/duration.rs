//! Human durations (`30s`, `5m`, `2h`, `1h30m`) as they appear in campaign files and flags.
//!
//! One parser for both places, so `timeout: 30s` in YAML and `--interval 30s` on the command line
//! accept exactly the same spellings. jiff's "friendly" format does the parsing; this module only
//! refuses negative values and gives the error message a user can act on.

use std::time::Duration;

/// Parses a non-negative duration such as `30s`, `250ms`, `5m` or `1h 30m`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let signed: jiff::SignedDuration = trimmed.parse().map_err(|_| {
        format!("`{trimmed}` is not a duration: write it like 30s, 500ms, 5m or 2h")
    })?;
    Duration::try_from(signed)
        .map_err(|_| format!("`{trimmed}` is negative: a duration must be zero or more"))
}

/// A duration as the campaign file would spell it (`1h`, `2h 30m`).
pub fn describe(d: Duration) -> String {
    jiff::SignedDuration::try_from(d).map_or_else(|_| format!("{d:?}"), |s| format!("{s:#}"))
}

/// A duration field in a serde-deserialised file, so the YAML error carries line and column.
pub fn deserialize<'de, D>(deserializer: D) -> Result<Option<Duration>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    let text = Option::<String>::deserialize(deserializer)?;
    text.map(|t| parse(&t).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_spellings() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("soon").is_err());
        assert!(parse("-5s").is_err());
        assert_eq!(describe(Duration::from_secs(3600)), "1h");
    }
}
