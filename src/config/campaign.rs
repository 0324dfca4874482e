//! The campaign file: YAML in, validated `Campaign` settings out.
//!
//! Parsing is two steps, the way ripgrep splits low-level and high-level arguments: serde reads
//! the file into `RawCampaign` exactly as written (unknown keys are errors with file, line and
//! column, because a misspelt `limts:` silently ignored would dial at the default rate), then
//! `Campaign::from_raw` resolves paths relative to the file, fills defaults and checks ranges.
//! Everything downstream takes a `Campaign` and never sees the raw YAML.

use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{NamedSource, SourceSpan};
use serde::{Deserialize, Serialize};

use crate::config::duration;
use crate::config::hours::{Hours, RawHours};
use crate::config::tags::Rules;
use crate::errors::{Error, Result};
use crate::input::contacts::ReadOptions;
use crate::provider::wire::{Mapped, StatusMap};
use crate::state::machine::CallState;

/// The real provider, used when neither the campaign, the environment nor a flag names another.
pub const DEFAULT_BASE_URL: &str = "https://open-skill-api.steponeai.com";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    name: String,
    contacts: PathBuf,
    #[serde(default)]
    phone_column: Option<String>,
    user_requirement: String,
    #[serde(default)]
    call_options: CallOptions,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    state: Option<PathBuf>,
    #[serde(default)]
    hours: Option<RawHours>,
    #[serde(default)]
    redial: Option<RawRedial>,
    #[serde(default)]
    suppress: Vec<PathBuf>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    multi_phone: Option<MultiPhone>,
    #[serde(default)]
    outcomes: Rules,
    #[serde(default)]
    results: RawResults,
    #[serde(default)]
    status_map: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    report: RawReport,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    columns: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResults {
    webhook: Option<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    secret_env: String,
    #[serde(default, deserialize_with = "duration::deserialize")]
    timeout: Option<Duration>,
}

/// Where every final result and tag change is POSTed, signed with the secret in `secret_env`.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    pub secret_env: String,
    /// How long one delivery may take.
    pub timeout: Duration,
}

/// What to do with a cell that holds several numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiPhone {
    /// The row is invalid, with a reason that says how to fix it.
    #[default]
    Error,
    /// One contact per number; the other columns are the same for each.
    Split,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedial {
    max_attempts: Option<u32>,
    when: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    after: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    base_url: Option<String>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    poll_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize")]
    poll_horizon: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    calls_per_minute: Option<u32>,
    calls_per_second: Option<u32>,
    concurrency: Option<u32>,
    daily_max: Option<u32>,
    max_requirement_chars: Option<u32>,
}

/// Options passed through to `initiate_call` unchanged. They are part of every request, so they
/// serialise straight into the request body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CallOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_engine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emotion: Option<String>,
}

/// How fast calls may start: a quota of `calls` per `per`, with no burst above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub calls: u32,
    pub per: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub rate: Rate,
    pub concurrency: u32,
    /// Calls per calendar day in the campaign's time zone, counted across runs.
    pub daily_max: Option<u32>,
    /// The longest rendered requirement sent; a longer one makes its row invalid.
    pub max_requirement_chars: usize,
}

/// `limits.max_requirement_chars` when the campaign does not set it.
pub const DEFAULT_MAX_REQUIREMENT_CHARS: usize = 2000;

/// Which outcomes are tried again, how often and how far apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Redial {
    /// Including the first call; 1 means no redial.
    pub max_attempts: u32,
    pub when: Vec<CallState>,
    pub after: Duration,
}

/// When to ask for a call's result: first after `interval`, then at growing spacing (see the
/// poller) up to twelve times that (one minute at most), for at most `horizon` in one run.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    pub interval: Duration,
    pub max_interval: Duration,
    pub horizon: Duration,
}

/// A validated campaign, with every path resolved.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub path: PathBuf,
    pub name: String,
    pub contacts: PathBuf,
    pub phone_column: String,
    pub user_requirement: String,
    pub call_options: CallOptions,
    pub base_url: Option<String>,
    pub timeout: Duration,
    pub poll: PollPolicy,
    pub limits: Limits,
    pub state_path: PathBuf,
    pub hours: Hours,
    pub redial: Redial,
    /// Do-not-call lists: CSV files with a phone column, or one number a line.
    pub suppress: Vec<PathBuf>,
    /// How to read the contact list (encoding override, workbook sheet).
    pub read: ReadOptions,
    pub multi_phone: MultiPhone,
    /// Outcome tags over transcripts.
    pub outcomes: Rules,
    pub webhook: Option<Webhook>,
    /// The campaign's own words for call statuses (`status_map:`).
    pub statuses: StatusMap,
    /// How long a number waits when the provider says it is called too often: `redial.after`,
    /// or an hour.
    pub hold_back: Duration,
    /// The list's columns that name a person in the report (`report.columns`); none: all of
    /// them, in the list's order.
    pub report_columns: Option<Vec<String>>,
}

/// The largest campaign file read: a campaign is a page of YAML.
const MAX_CAMPAIGN_BYTES: u64 = 1 << 20;

impl Campaign {
    pub fn load(path: &Path) -> Result<Campaign> {
        let bytes = crate::input::files::read_small(path, MAX_CAMPAIGN_BYTES, "campaign file")?;
        let text = String::from_utf8(bytes).map_err(|_| Error::ReadFile {
            path: path.to_path_buf(),
            cause: std::io::Error::other("it is not UTF-8 text; save it as UTF-8"),
        })?;
        Campaign::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Campaign> {
        let raw: RawCampaign =
            serde_norway::from_str(text).map_err(|e| syntax_error(path, text, &e))?;
        Campaign::from_raw(path, raw)
    }

    fn from_raw(path: &Path, raw: RawCampaign) -> Result<Campaign> {
        let invalid = |message: String, help: &str| Error::CampaignInvalid {
            path: path.to_path_buf(),
            message,
            help: help.to_string(),
        };
        let name = raw.name.trim().to_string();
        if name.is_empty() {
            return Err(invalid(
                "`name` is empty".into(),
                "give the campaign a name; it identifies its state database",
            ));
        }
        if raw.user_requirement.trim().is_empty() {
            return Err(invalid(
                "`user_requirement` is empty".into(),
                "write the instruction for the AI caller, e.g. `Call {{ name }} to confirm ...`",
            ));
        }
        for (key, value) in [
            ("volume", raw.call_options.volume),
            ("speed", raw.call_options.speed),
        ] {
            if value.is_some_and(|v| v > 100) {
                return Err(invalid(
                    format!("`call_options.{key}` is above 100"),
                    "use a value from 0 to 100",
                ));
            }
        }
        let base_url =
            match raw.api.base_url {
                Some(url) => Some(check_base_url(&url).map_err(|m| {
                    invalid(m, "write it like https://open-skill-api.steponeai.com")
                })?),
                None => None,
            };
        let rate = match (raw.limits.calls_per_minute, raw.limits.calls_per_second) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "`limits` has both calls_per_minute and calls_per_second".into(),
                    "keep one of them",
                ));
            }
            (None, Some(n)) => Rate {
                calls: n,
                per: Duration::from_secs(1),
            },
            (Some(n), None) => Rate {
                calls: n,
                per: Duration::from_secs(60),
            },
            (None, None) => Rate {
                calls: 20,
                per: Duration::from_secs(60),
            },
        };
        if rate.per.as_nanos() / u128::from(rate.calls.max(1)) < 10_000 {
            return Err(invalid(
                "the call rate in `limits` is above 100,000 calls per second".into(),
                "use a rate the provider allows, e.g. calls_per_minute: 20",
            ));
        }
        if rate.calls == 0 {
            return Err(invalid(
                "the call rate in `limits` is 0".into(),
                "use at least 1 call per minute",
            ));
        }
        let concurrency = raw.limits.concurrency.unwrap_or(4);
        if !(1..=1000).contains(&concurrency) {
            return Err(invalid(
                "`limits.concurrency` must be between 1 and 1000".into(),
                "4 suits most accounts",
            ));
        }
        let timeout = raw.api.timeout.unwrap_or(Duration::from_secs(30));
        if timeout.is_zero() {
            return Err(invalid(
                "`api.timeout` is 0".into(),
                "use a timeout such as 30s",
            ));
        }
        let interval = raw.api.poll_interval.unwrap_or(Duration::from_secs(5));
        if interval.is_zero() {
            return Err(invalid(
                "`api.poll_interval` is 0".into(),
                "use an interval such as 5s",
            ));
        }
        let hours = Hours::from_raw(raw.hours)
            .map_err(|m| invalid(m, "see \"Calling hours\" in the README"))?;
        let hold_back = raw
            .redial
            .as_ref()
            .and_then(|r| r.after)
            .unwrap_or(Duration::from_secs(3600));
        let redial = match raw.redial {
            None => Redial {
                max_attempts: 1,
                when: Vec::new(),
                after: Duration::from_secs(2 * 3600),
            },
            Some(r) => {
                let when = r
                    .when
                    .unwrap_or_else(|| vec!["no_answer".into(), "busy".into()])
                    .iter()
                    .map(|w| match CallState::parse(w.trim()) {
                        Some(s) if s.may_redial() => Ok(s),
                        _ => Err(invalid(
                            format!(
                                "`{w}` in redial.when is not an outcome that can be tried again"
                            ),
                            "use no_answer, busy, failed or unknown",
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let max_attempts = r.max_attempts.unwrap_or(3);
                if max_attempts == 0 {
                    return Err(invalid(
                        "`redial.max_attempts` is 0".into(),
                        "it counts the first call too: use 1 for no redial",
                    ));
                }
                Redial {
                    max_attempts,
                    when,
                    after: r.after.unwrap_or(Duration::from_secs(2 * 3600)),
                }
            }
        };
        let encoding = match &raw.encoding {
            None => None,
            Some(label) => Some(
                encoding_rs::Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
                    invalid(
                        format!("`encoding: {label}` is not an encoding stepcall knows"),
                        "use utf-8, gbk, gb18030, utf-16le or utf-16be",
                    )
                })?,
            ),
        };
        let delimiter = match raw.delimiter.as_deref() {
            None => None,
            Some("," | "comma") => Some(b','),
            Some(";" | "semicolon") => Some(b';'),
            Some("\t" | "tab") => Some(b'\t'),
            Some("|" | "pipe") => Some(b'|'),
            Some(other) => {
                return Err(invalid(
                    format!("`delimiter: {other:?}` is not a delimiter stepcall reads"),
                    "use \",\", \";\", tab or \"|\"",
                ));
            }
        };
        let webhook = match raw.results.webhook {
            None => None,
            Some(w) => Some(Webhook {
                url: check_webhook_url(&w.url).map_err(|m| {
                    invalid(
                        m,
                        "write the CRM's address like https://crm.example/hooks/calls",
                    )
                })?,
                secret_env: w.secret_env,
                timeout: match w.timeout {
                    Some(t) if t.is_zero() => {
                        return Err(invalid(
                            "`results.webhook.timeout` is 0".into(),
                            "use a timeout such as 10s",
                        ));
                    }
                    Some(t) => t,
                    None => Duration::from_secs(10),
                },
            }),
        };
        let mut statuses = Vec::new();
        for (word, state) in &raw.status_map {
            let mapped = match state.trim() {
                "in_progress" => Mapped::InProgress,
                other => match CallState::parse(other) {
                    Some(s) if s.is_result() => Mapped::Final(s),
                    _ => {
                        return Err(invalid(
                            format!(
                                "`status_map` maps `{word}` to `{state}`, which is not a result"
                            ),
                            "use answered, no_answer, busy, failed, rejected, unknown, or in_progress (keep asking)",
                        ));
                    }
                },
            };
            statuses.push((word.clone(), mapped));
        }
        let max_requirement_chars = match raw.limits.max_requirement_chars {
            Some(0) => {
                return Err(invalid(
                    "`limits.max_requirement_chars` is 0".into(),
                    "leave it out for the default of 2000 characters",
                ));
            }
            Some(n) => n as usize,
            None => DEFAULT_MAX_REQUIREMENT_CHARS,
        };
        if raw.report.columns.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(
                "`report.columns` is empty: the report could not say who anyone is".into(),
                "name the list's columns to show, e.g. report: { columns: [姓名, 预约日期] }, or leave it out for all of them",
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let contacts = tidy(&dir.join(&raw.contacts));
        let state_path = match raw.state {
            Some(state) => tidy(&dir.join(state)),
            None => path.with_extension("db"),
        };
        Ok(Campaign {
            path: path.to_path_buf(),
            name,
            contacts,
            phone_column: raw.phone_column.unwrap_or_else(|| "phone".to_string()),
            user_requirement: raw.user_requirement,
            call_options: raw.call_options,
            base_url,
            timeout,
            poll: PollPolicy {
                interval,
                // 5s grows to a minute; a faster first poll keeps the same shape.
                max_interval: (interval * 12).min(Duration::from_secs(60)).max(interval),
                horizon: raw.api.poll_horizon.unwrap_or(Duration::from_secs(30 * 60)),
            },
            limits: Limits {
                rate,
                concurrency,
                daily_max: raw.limits.daily_max,
                max_requirement_chars,
            },
            state_path,
            hours,
            redial,
            suppress: raw.suppress.iter().map(|p| tidy(&dir.join(p))).collect(),
            read: ReadOptions {
                encoding,
                sheet: raw.sheet,
                delimiter,
            },
            multi_phone: raw.multi_phone.unwrap_or_default(),
            outcomes: raw.outcomes,
            webhook,
            statuses: StatusMap::new(statuses),
            hold_back,
            report_columns: raw.report.columns,
        })
    }
}

impl Campaign {
    /// Checks that every column `report.columns` names is one of the list's `headers`: a
    /// misspelt column is refused when the campaign is checked, not found in the report after
    /// the calls.
    pub fn check_report_columns(&self, headers: &[String]) -> Result<()> {
        let chosen = self.report_columns.iter().flatten();
        match chosen.into_iter().find(|c| !headers.contains(c)) {
            None => Ok(()),
            Some(missing) => Err(Error::CampaignInvalid {
                path: self.path.clone(),
                message: format!(
                    "`report.columns` names `{missing}`, which is not a column of the list"
                ),
                help: format!("the list's columns are: {}", headers.join(", ")),
            }),
        }
    }
}

/// `campaigns/../examples/x.csv` becomes `examples/x.csv`, so messages show the path a person
/// would type. Purely lexical: a `..` after a symlink is kept.
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                if std::fs::symlink_metadata(&out).is_ok_and(|m| m.file_type().is_symlink()) {
                    out.push(part);
                } else {
                    out.pop();
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Accepts a CRM's http(s) URL, query string included (WeCom's robots carry their key in
/// `?key=`, DingTalk's in `?access_token=`).
pub fn check_webhook_url(url: &str) -> std::result::Result<String, String> {
    let url = url.trim();
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("the webhook URL is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err("the webhook URL must start with https:// or http:// and name a host".into());
    }
    Ok(url.to_string())
}

/// Accepts an http(s) URL without a trailing slash, so paths can be appended to it.
pub fn check_base_url(url: &str) -> std::result::Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("the base URL `{url}` is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the base URL `{url}` must start with https:// or http://"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) || parsed.query().is_some() {
        return Err(format!(
            "the base URL `{url}` must be a scheme and a host, like https://host"
        ));
    }
    Ok(url.to_string())
}

/// The known key nearest to the unknown one serde names ("unknown field `limit`, expected one
/// of `name`, ..."), when one is near enough to be the key meant.
fn nearest_key(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let (_, expected) = rest.split_once("expected ")?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|key| (strsim::jaro_winkler(unknown, key), key))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, key)| key)
}

fn syntax_error(path: &Path, text: &str, err: &serde_norway::Error) -> Error {
    let (line, column, offset) = match err.location() {
        Some(loc) => (loc.line(), loc.column(), loc.index()),
        None => (1, 1, 0),
    };
    // serde_norway appends " at line L column C" to the message; the path:line:column prefix
    // already says it.
    let full = err.to_string();
    let message = match full.find(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    };
    let help = if let Some(nearest) = nearest_key(&message) {
        format!("did you mean `{nearest}`?")
    } else if message.contains("unknown field") {
        "remove or correct the key; the README's \"Campaign file\" section lists every key"
            .to_string()
    } else if message.starts_with("missing field") {
        "add the key; `name`, `contacts` and `user_requirement` are required".to_string()
    } else {
        "fix the YAML at that place".to_string()
    };
    Error::CampaignSyntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
        help,
        source_code: NamedSource::new(path.display().to_string(), text.to_string()),
        span: SourceSpan::from((offset.min(text.len()), 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Campaign> {
        Campaign::parse(Path::new("/x/c.yaml"), text)
    }

    #[test]
    fn defaults_and_resolved_paths() {
        let c = parse("name: n\ncontacts: ../e/c.csv\nuser_requirement: hi {{ name }}\n").unwrap();
        assert_eq!(c.contacts, Path::new("/e/c.csv"));
        assert_eq!(c.state_path, Path::new("/x/c.db"));
        assert_eq!(c.phone_column, "phone");
        assert_eq!(
            c.limits.rate,
            Rate {
                calls: 20,
                per: Duration::from_secs(60)
            }
        );
        assert_eq!(c.timeout, Duration::from_secs(30));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = parse(
            "name: n\ncontacts: c.csv\nuser_requirement: hi\nlimits:\n  calls_per_minut: 5\n",
        )
        .unwrap_err();
        match err {
            Error::CampaignSyntax {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!((line, column), (5, 3));
                assert!(message.contains("calls_per_minut"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn base_urls_are_checked_before_any_request() {
        assert_eq!(
            check_base_url("http://127.0.0.1:8787/").as_deref(),
            Ok("http://127.0.0.1:8787")
        );
        assert!(check_base_url("http://127.0.0.1:99999").is_err());
        assert!(check_base_url("ftp://example.com").is_err());
        assert!(check_base_url("example.com").is_err());
    }

    #[test]
    fn bad_duration_is_located() {
        let err = parse("name: n\ncontacts: c.csv\nuser_requirement: hi\napi: { timeout: soon }\n")
            .unwrap_err();
        assert!(
            matches!(err, Error::CampaignSyntax { line: 4, .. }),
            "{err:?}"
        );
    }
}
