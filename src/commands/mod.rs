//! From parsed flags to validated settings to a command's work: the high-level half of the CLI.
//!
//! Every rule about what a flag means lives here: where the base URL and the key come from,
//! what `--simulate` changes, what goes to stdout (results) and what to stderr (logs, errors).
//! Errors reach the user once, at the end, rendered by miette with their help line, and turn
//! into the exit code the `errors` table gives them.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::cli::lowargs::{CallArgs, CallinfoArgs, Cli, Command, RunArgs, SimArgs};
use crate::config::campaign::{self, Campaign, DEFAULT_BASE_URL};
use crate::engine::gate::Halt;
use crate::errors::{Error, Result};
use crate::exit;
use crate::output::export::{ExportOptions, Format as ExportFormat};
use crate::provider::client::Client;
use crate::state::machine::CallState;
mod call;
use crate::config::secrets::{self, ApiKey};
use crate::engine::run::{self, RunSettings, Target};
use crate::input::validate;
use crate::output::status::Status;
use crate::provider::sim::{self, SimConfig};
use crate::state::Store;
use call as oneoff;

pub const BASE_URL_ENV: &str = "STEPONEAI_BASE_URL";

pub fn main() -> ExitCode {
    // Over a file-size limit (`ulimit -f`) the kernel would kill stepcall mid-write with
    // SIGXFSZ, losing the message and maybe a call id; ignored, the write fails instead and
    // SQLite reports the disk as full, which stops the run cleanly.
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // SAFETY: nothing has touched SQLite yet, and this is still the only thread.
    unsafe {
        crate::state::before_any_connection();
    }
    // No core file, and no other process of this user reading this one's memory: the API key
    // and the webhook secret are in it.
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let cli = Cli::parse();
    crate::cli::logging::init(if cli.quiet {
        -1
    } else {
        cli.verbose.min(3) as i8
    });
    // In a cron mail or a pipe, one error is one line per sentence: no wrapping, no colour.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .wrap_lines(terminal)
                .color(terminal)
                .unicode(terminal)
                .build(),
        )
    }));
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = error.exit_code();
            eprintln!("{:?}", miette::Report::new(error));
            ExitCode::from(code)
        }
    }
}

fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Validate {
            campaign,
            strict,
            invalid_out,
        } => cmd_validate(&Campaign::load(&campaign)?, strict, invalid_out.as_deref()),
        Command::Preview { campaign, count } => cmd_preview(&Campaign::load(&campaign)?, count),
        Command::Run(args) => cmd_run(args),
        Command::Status { campaign, json } => cmd_status(&Campaign::load(&campaign)?, json),
        Command::Export {
            campaign,
            output,
            excel,
            format,
            only,
            since,
        } => {
            let campaign = Campaign::load(&campaign)?;
            let options = export_options(&campaign, excel, &format, &only, since.as_deref())?;
            cmd_export(&campaign, output.as_deref(), &options)
        }
        Command::Sim(args) => cmd_sim(*args),
        Command::Report { campaign, output } => {
            let campaign = Campaign::load(&campaign)?;
            let store = Store::open(&campaign.state_path, false)?;
            let html = crate::output::report::html(&store, &campaign)?;
            crate::input::files::write_private(&output, html.as_bytes()).map_err(|cause| {
                Error::WriteFile {
                    path: output.clone(),
                    cause,
                }
            })?;
            eprintln!("wrote {}", output.display());
            Ok(exit::SUCCESS)
        }
        Command::Retag { campaign } => {
            let campaign = Campaign::load(&campaign)?;
            let mut store = Store::open(&campaign.state_path, false)?;
            if campaign.webhook.is_some() {
                // Tag changes are owed to the CRM too; the next run delivers them.
                store.enable_outbox();
            }
            let rules = campaign.outcomes.clone();
            let changed =
                store.retag(|transcript| crate::config::tags::tags(&rules, transcript))?;
            println!(
                "{changed} calls got new tags under the rules of {}",
                campaign.path.display()
            );
            Ok(exit::SUCCESS)
        }
        Command::Suppress { campaign, phones } => {
            cmd_suppress(&Campaign::load(&campaign)?, &phones)
        }
        Command::Call(args) => cmd_call(args),
        Command::Callinfo(args) => cmd_callinfo(args),
    }
}

/// The base URL for a live command: the flag, then the environment, then the campaign file.
fn base_url(flag: Option<String>, campaign: Option<&Campaign>) -> Result<String> {
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

fn cmd_validate(campaign: &Campaign, strict: bool, invalid_out: Option<&Path>) -> Result<u8> {
    let v = validate::validate(campaign, invalid_out)?;
    let contacts = campaign.contacts.display();
    let verdict = match (v.invalid, strict) {
        (0, _) => "can run",
        (_, false) => "can run, without its invalid rows",
        (_, true) => "cannot run with --strict: some rows are invalid",
    };
    println!(
        "{}: campaign `{}` {verdict}",
        campaign.path.display(),
        campaign.name
    );
    println!("  {contacts}: {}", v.format);
    if let Some((column, values)) = &v.sample {
        println!("  column `{column}` reads: {}", values.join(", "));
    }
    println!(
        "  {} rows · {} valid · {} invalid · {} duplicate · {} suppressed",
        v.rows, v.valid, v.invalid, v.duplicates, v.suppressed
    );
    let reasons = v.by_reason();
    if !reasons.is_empty() {
        let parts: Vec<String> = reasons
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        println!("  invalid by reason: {}", parts.join(" · "));
    }
    const SHOWN: usize = 20;
    if !v.problems.is_empty() {
        println!("  rows that will not be dialled:");
        for p in v.problems.iter().take(SHOWN) {
            println!(
                "    {contacts}, row {}, column {}: {}",
                p.line, p.column, p.message
            );
        }
        if v.problems.len() > SHOWN {
            println!("    ... and {} more", v.problems.len() - SHOWN);
        }
    }
    if let Some(out) = invalid_out {
        println!(
            "  {} invalid rows written to {} (fix them and add them back to the list)",
            v.invalid,
            out.display()
        );
    }
    Ok(match (v.invalid, strict) {
        (0, _) => exit::SUCCESS,
        (_, false) => exit::SOME_ROWS_INVALID,
        (_, true) => exit::INVALID_INPUT,
    })
}

fn cmd_preview(campaign: &Campaign, count: usize) -> Result<u8> {
    let previews = validate::preview(campaign, count)?;
    if previews.is_empty() {
        println!(
            "no contact in {} would be dialled",
            campaign.contacts.display()
        );
    }
    for (i, p) in previews.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("── row {} · {} ──", p.line, p.phone);
        println!("{}", p.requirement);
    }
    Ok(exit::SUCCESS)
}

fn cmd_run(args: RunArgs) -> Result<u8> {
    let campaign = Campaign::load(&args.campaign)?;
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
            base_url: base_url(args.base_url, Some(&campaign))?,
            key: secrets::load()?,
        }
    };
    let report = run::run(RunSettings {
        campaign: campaign.clone(),
        target,
        redial_uncertain: args.redial_uncertain,
        no_wait: args.no_wait,
        accept_changes: args.accept_changes,
        max_calls: args.max_calls,
        max_duration: args.max_duration,
        wait_for_window: args.wait_for_window,
    })?;
    let local = |t: jiff::Timestamp| {
        report
            .hours
            .local(t)
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    if args.json {
        let status = Status {
            campaign: report.campaign.clone(),
            database: report.database.clone(),
            started: true,
            simulated: report.simulated,
            counts: report.counts.clone(),
            redials_waiting: report.redials_waiting,
            next_redial_at: None,
            webhook_backlog: report.webhook_backlog,
            held_back: report.held_back,
            held_back_until: None,
            several_calls: report.several_calls,
        };
        let mut json = status.to_json();
        json["next_due"] = report
            .next_due
            .map(|t| report.hours.local(t).to_string())
            .into();
        json["stopped"] = report.halt.as_ref().map(|h| h.to_string()).into();
        if let Some(o) = json.as_object_mut() {
            // The run's own next_due already covers redials and held-back numbers.
            o.remove("next_redial_at");
            o.remove("held_back_until");
        }
        println!("{json}");
        return Ok(exit::SUCCESS);
    }
    let label = if report.simulated {
        " (simulated: no real call was made)"
    } else {
        ""
    };
    println!("campaign `{}`{label}", report.campaign);
    println!("  {}", report.counts.line());
    let uncertain = report.counts.get(CallState::Uncertain);
    if uncertain > 0 {
        println!(
            "  {uncertain} uncertain: the provider may have rung them; they are not dialled again unless you run with --redial-uncertain"
        );
    }
    let awaiting = report.counts.get(CallState::Dialed);
    let pending = report.counts.get(CallState::Pending);
    match &report.halt {
        Some(Halt::OutsideHours { opens: Some(opens) }) => {
            println!(
                "  outside calling hours: the next window opens {}",
                local(*opens)
            );
        }
        Some(halt) => println!("  dialing stopped: {halt}"),
        None => {}
    }
    if report.redials_waiting > 0 {
        println!("  {} waiting to redial", report.redials_waiting);
    }
    print_provider_notes(report.held_back, None, report.several_calls);
    if report.webhook_backlog > 0 {
        println!(
            "  {} results owed to the CRM webhook: the next run delivers them",
            report.webhook_backlog
        );
    }
    if awaiting > 0 || pending > 0 {
        println!(
            "  {awaiting} awaiting a result, {pending} not dialled yet: run the same command again to continue"
        );
    }
    if let Some(due) = report.next_due {
        println!("  next call due: {}", local(due));
    }
    println!("  state database: {}", report.database.display());
    println!(
        "  export the results: stepcall export {} -o results.csv",
        campaign.path.display()
    );
    Ok(exit::SUCCESS)
}

fn cmd_status(campaign: &Campaign, json: bool) -> Result<u8> {
    let status = Status::read(campaign)?;
    if json {
        println!("{}", status.to_json());
        return Ok(exit::SUCCESS);
    }
    if !status.started {
        println!(
            "campaign `{}` has not run yet (no state database at {})",
            status.campaign,
            status.database.display()
        );
        return Ok(exit::SUCCESS);
    }
    let label = if status.simulated { " (simulated)" } else { "" };
    println!(
        "campaign `{}`{label}: {} contacts",
        status.campaign,
        status.counts.total()
    );
    println!("  {}", status.counts.line());
    if status.redials_waiting > 0 {
        let due = status
            .next_redial_at
            .as_ref()
            .map(|t| t.strftime("%Y-%m-%d %H:%M %Z").to_string());
        println!(
            "  {} waiting to redial; the next is due {}",
            status.redials_waiting,
            due.unwrap_or_default()
        );
    }
    print_provider_notes(
        status.held_back,
        status.held_back_until.as_ref(),
        status.several_calls,
    );
    if status.webhook_backlog > 0 {
        println!(
            "  {} results owed to the CRM webhook (the next run delivers them)",
            status.webhook_backlog
        );
    }
    println!("  state database: {}", status.database.display());
    Ok(exit::SUCCESS)
}

/// The summary lines about what the provider did to some contacts: numbers held back, and
/// several calls placed for one request.
fn print_provider_notes(held_back: u64, until: Option<&jiff::Zoned>, several_calls: u64) {
    if held_back > 0 {
        let until = until.map_or(String::new(), |t| {
            format!("; the first may go {}", t.strftime("%Y-%m-%d %H:%M %Z"))
        });
        println!(
            "  {held_back} held back: the provider asked to call those numbers less often{until}"
        );
    }
    if several_calls > 0 {
        println!(
            "  {several_calls} rung more than once: the provider placed several calls for one request (see call_error in the export)"
        );
    }
}

/// Turns the export flags into options, refusing unknown states and unreadable times.
fn export_options(
    campaign: &Campaign,
    excel: bool,
    format: &str,
    only: &[String],
    since: Option<&str>,
) -> Result<ExportOptions> {
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
    let format = if format == "jsonl" {
        ExportFormat::Jsonl
    } else {
        ExportFormat::Csv
    };
    Ok(ExportOptions {
        format,
        excel,
        only,
        since,
    })
}

fn cmd_export(campaign: &Campaign, output: Option<&Path>, options: &ExportOptions) -> Result<u8> {
    let store = Store::open(&campaign.state_path, false)?;
    match output.filter(|p| *p != Path::new("-")) {
        None => {
            let stdout = std::io::stdout();
            crate::output::export::write(&store, stdout.lock(), options)?;
        }
        Some(path) => {
            // Written beside the target and renamed into place: a crash never leaves half a file.
            let mut partial = path.as_os_str().to_owned();
            partial.push(".partial");
            let partial = std::path::PathBuf::from(partial);
            let write_err = |source| Error::WriteFile {
                path: path.to_path_buf(),
                cause: source,
            };
            let file = crate::input::files::create_private(&partial).map_err(write_err)?;
            let mut out = std::io::BufWriter::new(file);
            let n = crate::output::export::write(&store, &mut out, options)?;
            out.flush().map_err(write_err)?;
            drop(out);
            std::fs::rename(&partial, path).map_err(write_err)?;
            eprintln!("wrote {n} contacts to {}", path.display());
        }
    }
    Ok(exit::SUCCESS)
}

fn cmd_suppress(campaign: &Campaign, raw: &[String]) -> Result<u8> {
    let phones = raw
        .iter()
        .map(|p| {
            crate::input::phone::normalize(p).map_err(|reason| Error::Usage {
                message: format!("{p:?} cannot be suppressed: {reason}"),
                help: "give numbers as they would be dialled, e.g. 13800138000".into(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut store = Store::open(&campaign.state_path, true)?;
    let added = store.suppress(&phones, "stepcall suppress")?;
    println!(
        "{added} numbers added to the do-not-call list of `{}` ({} already on it)",
        campaign.name,
        phones.len() as u64 - added
    );
    Ok(exit::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::WriteFile {
            path: "tokio runtime".into(),
            cause: source,
        })
}

fn cmd_sim(args: SimArgs) -> Result<u8> {
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
    let config = SimConfig {
        key: args.key,
        journal: args.journal,
        faults: args.faults,
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
        throttle: args.throttle,
        rate_throttle: args.rate_throttle,
        rate_foreign: args.rate_foreign,
        carrier_statuses: args.carrier_statuses,
        outcome: args.outcome,
        seed: args.seed,
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let key = config.key.clone();
        let journal = config.journal.clone();
        let simulator = sim::start(&args.addr, config).await?;
        // Written with errors ignored: whoever started the simulator may stop reading its output.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "stepcall simulator listening on {}", simulator.url());
        let _ = writeln!(out, "  no real phone call is made; API key: {key}");
        if let Some(journal) = journal {
            let _ = writeln!(out, "  journal: {}", journal.display());
        }
        let url = simulator.url();
        let _ = writeln!(out, "  try: STEPONEAI_API_KEY={key} stepcall call 13800138000 \"Say hello\" --wait --base-url {url}");
        let _ = out.flush();
        drop(out);
        let _ = tokio::signal::ctrl_c().await;
        simulator.stop().await;
        Ok(exit::SUCCESS)
    })
}

/// A client for a one-off command: the simulator's when `simulate` is set.
async fn oneoff_client(
    base: Option<String>,
    simulate: bool,
) -> Result<(Client, Option<sim::Simulator>)> {
    if simulate {
        let config = SimConfig {
            record_delay: Duration::from_millis(500),
            ..SimConfig::default()
        };
        let simulator = sim::start("127.0.0.1:0", config).await?;
        tracing::warn!("SIMULATION: no real phone call is made");
        let client = Client::new(
            &simulator.url(),
            ApiKey::new(sim::DEFAULT_KEY),
            Duration::from_secs(30),
        );
        return Ok((client, Some(simulator)));
    }
    let url = base_url(base, None)?;
    Ok((
        Client::new(&url, secrets::load()?, Duration::from_secs(30)),
        None,
    ))
}

fn cmd_call(args: CallArgs) -> Result<u8> {
    runtime()?.block_on(async {
        let (client, _simulator) = oneoff_client(args.base_url, args.simulate).await?;
        let call_ids = oneoff::call(&client, &args.phone, &args.requirement).await?;
        for call_id in &call_ids {
            println!("call_id: {call_id}");
        }
        if args.wait {
            for call_id in &call_ids {
                // About 30 minutes of doubling waits, like a campaign's poll horizon.
                let finished =
                    oneoff::wait_for_record(&client, call_id, 36, args.interval, true).await?;
                println!("{}", oneoff::describe(call_id, &finished.result));
            }
        }
        Ok(exit::SUCCESS)
    })
}

fn cmd_callinfo(args: CallinfoArgs) -> Result<u8> {
    runtime()?.block_on(async {
        let url = base_url(args.base_url, None)?;
        let client = Client::new(&url, secrets::load()?, Duration::from_secs(30));
        let finished =
            oneoff::wait_for_record(&client, &args.call_id, args.retries, args.interval, false)
                .await?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&finished.raw).unwrap_or_default()
            );
        } else {
            println!("{}", oneoff::describe(&args.call_id, &finished.result));
        }
        Ok(exit::SUCCESS)
    })
}
