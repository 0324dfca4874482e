//! The command line exactly as typed: clap's derive structs and nothing else.
//!
//! Like ripgrep's low-level arguments, these are raw: paths are not opened, URLs not checked,
//! keys not loaded. `app` turns them into validated settings, so every rule about what a flag
//! means lives in one place and the parsing stays declarative.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::duration;

#[derive(Debug, Parser)]
#[command(
    name = "stepcall",
    version,
    about = "Run outbound AI phone-call campaigns through the Stepone AI call API."
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the campaign file, the contact list and every rendered requirement; no network.
    Validate {
        campaign: PathBuf,
        /// Any invalid row makes the campaign fail (exit 2) instead of exit 4.
        #[arg(long)]
        strict: bool,
        /// Write the invalid rows here, with a `reason` column, in the list's encoding.
        #[arg(long, value_name = "FILE")]
        invalid_out: Option<PathBuf>,
    },
    /// Print the first rendered user_requirements.
    Preview {
        campaign: PathBuf,
        /// How many to print.
        #[arg(short = 'n', long = "count", default_value_t = 3)]
        count: usize,
    },
    /// Dial the campaign (or resume it): import, dial, collect results.
    Run(RunArgs),
    /// Show how far the campaign has got.
    Status {
        campaign: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write every contact with its result: CSV, an Excel workbook, or JSON lines.
    Export {
        campaign: PathBuf,
        /// Output file (results.csv, results.xlsx, results.jsonl: the extension picks the
        /// format); standard output when absent or `-`.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// CSV for Excel: UTF-8 with a BOM, and numbers such as phone numbers kept as text.
        #[arg(long)]
        excel: bool,
        /// csv; xlsx, an Excel workbook; or jsonl, one JSON object per contact with every
        /// attempt and transcript (default: from the -o extension, else csv).
        #[arg(long, value_parser = ["csv", "xlsx", "jsonl"])]
        format: Option<String>,
        /// Only contacts in these states, e.g. answered,no_answer.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Only contacts updated at or after this time (2026-12-01, or an RFC 3339 instant).
        #[arg(long)]
        since: Option<String>,
    },
    /// Serve the Stepone API simulator on loopback, for trying things by hand.
    Sim(Box<SimArgs>),
    /// Write a self-contained HTML report: funnel, outcomes by hour, durations, cost, tags.
    Report {
        campaign: PathBuf,
        /// The HTML file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Compute the outcome tags of past calls again, after the campaign's rules changed.
    Retag { campaign: PathBuf },
    /// Put numbers on the campaign's do-not-call list; they are never dialled.
    Suppress {
        campaign: PathBuf,
        #[arg(required = true)]
        phones: Vec<String>,
    },
    /// Place one call, like the skill's callout.sh.
    Call(CallArgs),
    /// Fetch one call's record, like the skill's callinfo.sh.
    Callinfo(CallinfoArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    pub campaign: PathBuf,
    /// Dial the built-in simulator instead of the real API: no key needed, nobody is rung.
    #[arg(long)]
    pub simulate: bool,
    /// The API's base URL (default: STEPONEAI_BASE_URL, then the campaign's api.base_url).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Dial `uncertain` contacts again. Some of them may already have been rung.
    #[arg(long)]
    pub redial_uncertain: bool,
    /// Dial, then exit without waiting for results; the next run collects them.
    #[arg(long)]
    pub no_wait: bool,
    /// Run although the template, phone column or call options changed after calls were made.
    #[arg(long)]
    pub accept_changes: bool,
    /// Start at most N calls in this run (0: import and check the list, dial nobody).
    #[arg(long, value_name = "N")]
    pub max_calls: Option<u64>,
    /// Start no new call after this long, e.g. 45m.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub max_duration: Option<Duration>,
    /// Outside calling hours, wait for the next window instead of exiting.
    #[arg(long)]
    pub wait_for_window: bool,
    /// Print the summary as one line of JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub addr: String,
    /// The API key the simulator accepts.
    #[arg(long, default_value = crate::provider::sim::DEFAULT_KEY)]
    pub key: String,
    /// Append every accepted call to this JSON-lines file.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Append every injected fault (429, 5xx) to this JSON-lines file, before answering it.
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Delay before every answer.
    #[arg(long, default_value = "20ms", value_parser = duration::parse)]
    pub latency: Duration,
    /// Delay between accepting (journaling) a call and answering.
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    pub answer_delay: Duration,
    /// About how long until a call's record is ready.
    #[arg(long, default_value = "3s", value_parser = duration::parse)]
    pub record_delay: Duration,
    /// Spread the record delays evenly from --record-delay up to this (e.g. 5s to 60s).
    #[arg(long, value_parser = duration::parse)]
    pub record_delay_max: Option<Duration>,
    /// Share of requests answered 429 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_429: f64,
    /// The Retry-After sent with a 429.
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    pub retry_after: Duration,
    /// Send 429s without a Retry-After header.
    #[arg(long)]
    pub no_retry_after: bool,
    /// Share of requests answered 500, 502, 503 or 504 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_500: f64,
    /// Give 5xx answers an HTML body, as a gateway would.
    #[arg(long)]
    pub html_errors: bool,
    /// Share of accepted calls whose answer is cut off by a connection reset (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_drop: f64,
    /// Share of accepted calls answered only after --slow-delay (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_slow: f64,
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub slow_delay: Duration,
    /// Share of accepted calls and record lookups answered with malformed JSON (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_garbled: f64,
    /// Share of accepted calls answered with a body of several MiB (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_huge: f64,
    /// Share of accepted calls answered 502 anyway, as by a gateway that lost the answer (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_lost_5xx: f64,
    /// Share of accepted calls answered 429 with their call ids, placed all the same (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_429_placed: f64,
    /// Share of accepted calls answered 200 `success: false` with their call ids (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_false_placed: f64,
    /// Share of accepted calls answered 200 `success: false` "请求过于频繁" without an id (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_no_id: f64,
    /// Share of accepted calls placed twice, answered with two call ids (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_double: f64,
    /// Answer calls to this number HTTP 400 "该号码呼叫过于频繁", placing nothing (repeatable).
    #[arg(long, value_name = "PHONE")]
    pub throttle: Vec<String>,
    /// Share of requests answered that way (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_throttle: f64,
    /// Share of record lookups answered with another call's record (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_foreign: f64,
    /// End calls with a carrier's word (关机, 停机, 空号, 无法接通, ...) and no duration.
    #[arg(long)]
    pub carrier_statuses: bool,
    /// End every call this way instead of the usual mix.
    #[arg(long, value_parser = ["completed", "no_answer", "busy", "failed"])]
    pub outcome: Option<String>,
    /// Seed for the fault and outcome dice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// The number to ring, or several separated by commas (one call each).
    pub phone: String,
    /// What the AI caller should do.
    pub requirement: String,
    /// Wait for the call's record and print it.
    #[arg(long)]
    pub wait: bool,
    /// The API's base URL (default: STEPONEAI_BASE_URL, then the real API).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Call the built-in simulator instead: nobody is rung.
    #[arg(long)]
    pub simulate: bool,
    /// With --wait: first wait before asking for the record (then doubling).
    #[arg(long, default_value = "5s", value_parser = duration::parse)]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct CallinfoArgs {
    pub call_id: String,
    /// How many times to ask before giving up.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Wait between tries.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub interval: Duration,
    /// The API's base URL (default: STEPONEAI_BASE_URL, then the real API).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Print the provider's record as JSON.
    #[arg(long)]
    pub json: bool,
}
