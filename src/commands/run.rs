//! `run`: the campaign dialled through the engine, then its summary (lines, or one JSON line
//! with the same names as `status --json`).

use crate::cli::hiargs;
use crate::cli::lowargs::RunArgs;
use crate::config::campaign::Campaign;
use crate::engine;
use crate::engine::gate::Halt;
use crate::engine::run::RunReport;
use crate::errors::Result;
use crate::exit;
use crate::output::status::Status;
use crate::state::machine::CallState;

use super::status::print_provider_notes;

/// Runs the campaign and prints its summary: also when a signal or the provider ended it
/// early, then the reason, whose exit code is the run's.
pub(super) fn run(args: RunArgs) -> Result<u8> {
    let campaign = super::load(&args.campaign)?;
    let report = engine::run::run(hiargs::run_settings(&args, campaign.clone())?)?;
    let status = match Status::read(&campaign) {
        Ok(status) => status,
        // A database that cannot be read back: the reason the run stopped says more.
        Err(e) => return Err(report.stopped.unwrap_or(e)),
    };
    let stopped = match (&report.stopped, &report.halt) {
        (Some(reason), _) => Some(reason.to_string()),
        (None, Some(halt)) => Some(halt.to_string()),
        (None, None) => status.owed().map(str::to_string),
    };
    if args.json {
        let mut json = status.to_json();
        json["stopped"] = stopped.into();
        println!("{json}");
    } else {
        summary(&campaign, &status, &report);
    }
    match report.stopped {
        Some(reason) => Err(reason),
        None => Ok(exit::SUCCESS),
    }
}

fn summary(campaign: &Campaign, status: &Status, report: &RunReport) {
    let local = crate::clock::at_a_glance;
    let label = crate::output::status::rehearsal_mark(status.simulated);
    println!("campaign `{}`{label}", status.campaign);
    println!("  {}", status.counts.line());
    let uncertain = status.counts.get(CallState::Uncertain);
    if uncertain > 0 {
        println!(
            "  {uncertain} uncertain: the provider may have rung them; they are not dialled again unless you run with --redial-uncertain"
        );
    }
    let awaiting = status.counts.get(CallState::Dialed);
    let pending = status.counts.get(CallState::Pending);
    if let Some(reason) = &report.stopped {
        println!("  {reason}");
    }
    match &report.halt {
        Some(Halt::OutsideHours { opens: Some(opens) }) => {
            println!(
                "  outside calling hours: the next window opens {}",
                local(&campaign.hours.local(*opens))
            );
        }
        Some(halt) => println!("  dialing stopped: {halt}"),
        None => {}
    }
    if status.redials_waiting > 0 {
        println!("  {} waiting to redial", status.redials_waiting);
    }
    print_provider_notes(status.held_back, None, status.several_calls);
    if status.webhook_backlog > 0 {
        println!(
            "  {} results owed to the CRM webhook: the next run delivers them",
            status.webhook_backlog
        );
    }
    if awaiting > 0 || pending > 0 {
        println!(
            "  {awaiting} awaiting a result, {pending} not dialled yet: run the same command again to continue"
        );
    }
    if let Some(due) = &status.next_due {
        println!("  next call due: {}", local(due));
    }
    println!("  state database: {}", status.database.display());
    println!(
        "  export the results: {} export {} -o results.xlsx",
        crate::cli::program(),
        campaign.path.display()
    );
}
