//! `run`: the campaign dialled through the engine, then its summary (lines, or one JSON line
//! with the same names as `status --json`).

use crate::cli::hiargs;
use crate::cli::lowargs::RunArgs;
use crate::config::campaign::Campaign;
use crate::engine;
use crate::engine::gate::Halt;
use crate::errors::Result;
use crate::exit;
use crate::output::status::Status;
use crate::state::machine::CallState;

use super::status::print_provider_notes;

/// Runs the campaign and prints its summary.
pub(super) fn run(args: RunArgs) -> Result<u8> {
    let campaign = Campaign::load(&args.campaign)?;
    let path = campaign.path.clone();
    let report = engine::run::run(hiargs::run_settings(&args, campaign)?)?;
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
    let label = crate::output::status::rehearsal_mark(report.simulated);
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
        path.display()
    );
    Ok(exit::SUCCESS)
}
