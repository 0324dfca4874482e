//! From flags and the environment to validated settings: the high-level half of the CLI.
//!
//! Every rule about what a flag or an environment variable means lives here, as in ripgrep's
//! `hiargs`: where the base URL and the API key come from, what `--simulate` changes, which
//! export states and times a flag names, which simulator faults add up. The engine, the store
//! and the provider client are handed the result and never read `std::env` or a flag.

use std::path::{Path, PathBuf};

use crate::cli::lowargs::{RunArgs, SimArgs};
use crate::clock;
use crate::config::campaign::{self, Campaign, DEFAULT_BASE_URL};
use crate::config::secrets::{self, ApiKey};
use crate::engine::run::{RunSettings, Target};
use crate::errors::{Error, Result};
use crate::output::export::{ExportOptions, Format as ExportFormat};
use crate::provider::sim::SimConfig;
use crate::state::machine::CallState;

pub const BASE_URL_ENV: &str = "STEPONEAI_BASE_URL";

/// Starts stepcall's clock where `STEPCALL_NOW` says (tests and rehearsals), else at the
/// system's time. Called once, before any command.
pub fn start_clock() {
    let at = std::env::var(clock::NOW_ENV)
        .ok()
        .and_then(|text| clock::parse(&text));
    clock::start_at(at);
}

/// The API key: `STEPONEAI_API_KEY`, else `~/.clawd/secrets.json`.
pub fn api_key() -> Result<ApiKey> {
    secrets::load(
        std::env::var(secrets::KEY_ENV).ok(),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// The key for a command without `--simulate` (`callinfo`): its help never offers the flag.
pub fn api_key_without_simulate() -> Result<ApiKey> {
    api_key().map_err(|e| match e {
        Error::NoApiKey { .. } => Error::NoApiKey { simulate: false },
        other => other,
    })
}

/// The base URL for a live command: the flag, then the environment, then the campaign file.
pub fn base_url(flag: Option<String>, campaign: Option<&Campaign>) -> Result<String> {
    let chosen = flag
        .or_else(|| {
            std::env::var(BASE_URL_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .or_else(|| campaign.and_then(|c| c.base_url.clone()))
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    campaign::check_base_url(&chosen).map_err(|message| Error::Usage {
        message,
        help: format!("fix --base-url, {BASE_URL_ENV} or api.base_url in the campaign file"),
    })
}

/// The settings of `run`: the campaign, who is called (the simulator or the API, with its key),
/// the webhook's secret, and the limits the flags set.
pub fn run_settings(args: &RunArgs, campaign: Campaign) -> Result<RunSettings> {
    let target = if args.simulate {
        if args.base_url.is_some() {
            return Err(Error::Usage {
                message: "--simulate and --base-url contradict each other".into(),
                help: "--simulate uses the built-in simulator; to use one started with `stepcall sim`, give only --base-url".into(),
            });
        }
        Target::Simulated
    } else {
        // Checked before the key, so a typo in the file is reported even without a key.
        crate::input::plan::Plan::open(&campaign)?;
        Target::Live {
            base_url: base_url(args.base_url.clone(), Some(&campaign))?,
            key: api_key()?,
        }
    };
    // Read before the run starts, so a missing secret refuses the campaign before any call.
    let webhook_secret = match &campaign.webhook {
        None => None,
        Some(w) => Some(crate::output::webhook::secret_from_env(
            &w.secret_env,
            std::env::var(&w.secret_env).ok(),
        )?),
    };
    Ok(RunSettings {
        campaign,
        target,
        webhook_secret,
        redial_uncertain: args.redial_uncertain,
        no_wait: args.no_wait,
        accept_changes: args.accept_changes,
        max_calls: args.max_calls,
        max_duration: args.max_duration,
        wait_for_window: args.wait_for_window,
    })
}

/// The export flags, as typed.
pub struct ExportFlags<'a> {
    pub output: Option<&'a Path>,
    pub excel: bool,
    pub format: Option<&'a str>,
    pub only: &'a [String],
    pub since: Option<&'a str>,
}

/// Turns the export flags into options, refusing unknown states, unreadable times and a format
/// that cannot be told.
pub fn export_options(campaign: &Campaign, flags: ExportFlags) -> Result<ExportOptions> {
    let ExportFlags {
        output,
        excel,
        format,
        only,
        since,
    } = flags;
    let only = if only.is_empty() {
        None
    } else {
        Some(
            only.iter()
                .map(|s| {
                    CallState::parse(s.trim()).ok_or_else(|| Error::Usage {
                        message: format!("--only {s}: there is no such state"),
                        help: format!(
                            "use some of: {}",
                            CallState::ALL
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        )
    };
    let since = match since {
        None => None,
        Some(text) => Some(
            text.parse::<jiff::Timestamp>()
                .ok()
                .or_else(|| {
                    let date: jiff::civil::Date = text.parse().ok()?;
                    date.to_zoned(campaign.hours.zone().clone()).ok().map(|z| z.timestamp())
                })
                .ok_or_else(|| Error::Usage {
                    message: format!("--since {text} is not a time"),
                    help: "write a date (2026-12-01, in the campaign's time zone) or an instant (2026-12-01T09:00:00+08:00)".into(),
                })?,
        ),
    };
    Ok(ExportOptions {
        format: export_format(format, output)?,
        excel,
        only,
        since,
        zone: campaign.hours.zone().clone(),
    })
}

/// The export's format: `--format`, else the output file's extension, else CSV (stdout, or a
/// file without an extension, as before there were other formats). A file named for one format
/// is never written in another: Excel would refuse a CSV named `.xlsx`.
fn export_format(flag: Option<&str>, output: Option<&Path>) -> Result<ExportFormat> {
    let named = |name: &str| match name.to_ascii_lowercase().as_str() {
        "csv" => Some(ExportFormat::Csv),
        "xlsx" => Some(ExportFormat::Xlsx),
        "jsonl" => Some(ExportFormat::Jsonl),
        _ => None,
    };
    let file = output.filter(|p| *p != Path::new("-"));
    let extension = file
        .and_then(Path::extension)
        .map(|e| e.to_string_lossy().into_owned());
    let by_extension = extension.as_deref().map(named);
    let shown = || file.map_or_else(String::new, |p| p.display().to_string());
    let from_flag = match flag {
        None => None,
        Some(name) => Some(named(name).ok_or_else(|| Error::Usage {
            message: format!("--format {name}: there is no such format"),
            help: "use --format csv, xlsx or jsonl".into(),
        })?),
    };
    match (from_flag, by_extension) {
        (Some(chosen), Some(Some(implied))) if chosen != implied => Err(Error::Usage {
            message: format!(
                "--format {} contradicts the name {}",
                flag.unwrap_or_default(),
                shown()
            ),
            help: "leave out --format (the extension chooses), or name the file for the format"
                .into(),
        }),
        (Some(chosen), _) => Ok(chosen),
        (None, Some(Some(implied))) => Ok(implied),
        (None, Some(None)) => Err(Error::Usage {
            message: format!(
                "-o {}: stepcall writes no `.{}` file",
                shown(),
                extension.unwrap_or_default()
            ),
            help: "name the file .csv, .xlsx or .jsonl, or choose with --format csv, xlsx or jsonl"
                .into(),
        }),
        (None, None) => Ok(ExportFormat::Csv),
    }
}

/// The simulator's settings, its fault rates checked to be shares that add up.
pub fn sim_config(args: &SimArgs) -> Result<SimConfig> {
    for (flag, share) in [
        ("--rate-429", args.rate_429),
        ("--rate-500", args.rate_500),
        ("--rate-drop", args.rate_drop),
        ("--rate-slow", args.rate_slow),
        ("--rate-garbled", args.rate_garbled),
        ("--rate-huge", args.rate_huge),
        ("--rate-lost-5xx", args.rate_lost_5xx),
        ("--rate-429-placed", args.rate_429_placed),
        ("--rate-false-placed", args.rate_false_placed),
        ("--rate-no-id", args.rate_no_id),
        ("--rate-double", args.rate_double),
        ("--rate-throttle", args.rate_throttle),
        ("--rate-foreign", args.rate_foreign),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(Error::Usage {
                message: format!("{flag} must be between 0 and 1"),
                help: "e.g. 0.2 for one request in five".into(),
            });
        }
    }
    let answer_shares = args.rate_drop
        + args.rate_slow
        + args.rate_garbled
        + args.rate_huge
        + args.rate_lost_5xx
        + args.rate_429_placed
        + args.rate_false_placed
        + args.rate_no_id;
    if answer_shares > 1.0 {
        return Err(Error::Usage {
            message: "--rate-drop, --rate-slow, --rate-garbled, --rate-huge, --rate-lost-5xx, --rate-429-placed, --rate-false-placed and --rate-no-id add up to more than 1".into(),
            help: "they share the answers to accepted calls between them; lower some of them".into(),
        });
    }
    Ok(SimConfig {
        key: args.key.clone(),
        journal: args.journal.clone(),
        faults: args.faults.clone(),
        latency: args.latency,
        answer_delay: args.answer_delay,
        record_delay: args.record_delay,
        record_delay_max: args.record_delay_max,
        rate_429: args.rate_429,
        retry_after: (!args.no_retry_after).then_some(args.retry_after),
        rate_500: args.rate_500,
        html_errors: args.html_errors,
        rate_drop: args.rate_drop,
        rate_slow: args.rate_slow,
        slow_delay: args.slow_delay,
        rate_garbled: args.rate_garbled,
        rate_huge: args.rate_huge,
        rate_lost_5xx: args.rate_lost_5xx,
        rate_429_placed: args.rate_429_placed,
        rate_false_placed: args.rate_false_placed,
        rate_no_id: args.rate_no_id,
        rate_double: args.rate_double,
        throttle: args.throttle.clone(),
        rate_throttle: args.rate_throttle,
        rate_foreign: args.rate_foreign,
        carrier_statuses: args.carrier_statuses,
        outcome: args.outcome.clone(),
        seed: args.seed,
    })
}
