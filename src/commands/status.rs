//! `status`: how far a campaign has got, as lines or JSON.

use crate::config::campaign::Campaign;
use crate::errors::Result;
use crate::exit;
use crate::output::status::Status;

pub(super) fn status(campaign: &Campaign, json: bool) -> Result<u8> {
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
    let label = crate::output::status::rehearsal_mark(status.simulated);
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
            .map(crate::clock::at_a_glance);
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
pub(super) fn print_provider_notes(
    held_back: u64,
    until: Option<&jiff::Zoned>,
    several_calls: u64,
) {
    if held_back > 0 {
        let until = until.map_or(String::new(), |t| {
            format!("; the first may go {}", crate::clock::at_a_glance(t))
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
