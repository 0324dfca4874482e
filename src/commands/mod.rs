//! One file per command: each takes validated settings from `cli::hiargs`, does the command's
//! work through the engine, the store or the outputs, and prints what the user reads.
//!
//! stdout is for results (summaries, exports, JSON), stderr for logs and errors, so a script can
//! pipe stdout. Errors reach the user once, at the end of `main`, rendered by miette with their
//! help line, and become the exit code the `errors` table gives them. May import everything;
//! nothing imports it but `main`.

mod call;
mod export;
mod report;
mod retag;
mod run;
mod sim;
mod status;
mod suppress;
mod validate;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::hiargs;
use crate::cli::lowargs::{Cli, Command};
use crate::config::campaign::Campaign;
use crate::errors::{Error, Result};

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
    hiargs::start_clock();
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
        } => validate::validate(&load(&campaign)?, strict, invalid_out.as_deref()),
        Command::Preview { campaign, count } => validate::preview(&load(&campaign)?, count),
        Command::Run(args) => run::run(args),
        Command::Status { campaign, json } => status::status(&load(&campaign)?, json),
        Command::Export {
            campaign,
            output,
            excel,
            format,
            only,
            since,
        } => {
            let campaign = load(&campaign)?;
            let flags = hiargs::ExportFlags {
                output: output.as_deref(),
                excel,
                format: format.as_deref(),
                only: &only,
                since: since.as_deref(),
            };
            let options = hiargs::export_options(&campaign, flags)?;
            export::export(&campaign, output.as_deref(), &options)
        }
        Command::Sim(args) => sim::sim(*args),
        Command::Report { campaign, output } => report::report(&load(&campaign)?, &output),
        Command::Retag { campaign } => retag::retag(&load(&campaign)?),
        Command::Suppress { campaign, phones } => suppress::suppress(&load(&campaign)?, &phones),
        Command::Call(args) => call::call(args),
        Command::Callinfo(args) => call::callinfo(args),
    }
}

/// The campaign at `path`; from here on log lines carry their time in its zone, as its export
/// and its calling hours do.
fn load(path: &std::path::Path) -> Result<Campaign> {
    let campaign = Campaign::load(path)?;
    crate::cli::logging::stamp_in(campaign.hours.zone());
    Ok(campaign)
}

/// The runtime of the commands that speak HTTP: two workers, as the machine has two cores.
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
