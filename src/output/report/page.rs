//! The report's page: the figures laid out as HTML, in the order a manager reads them (what
//! this is and when, the key figures, how far the list got, when calls ended how, who to act
//! on). Times are in the campaign's zone, as its people read them. The style sheet has a print
//! part, since the report is often printed or mailed as a PDF: A4 margins, no section split
//! across pages where it fits on one, no heading left alone at the foot of a page (Chromium
//! ignores `break-after: avoid`, so a heading reserves room for what follows it), table headers
//! repeated on each page.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::Value;

use crate::config::campaign::Campaign;
use crate::output::status::Status;
use crate::state::ExportRow;

use super::charts::{bars, stacked, tally_table};
use super::esc;
use super::figures::{DURATION_BUCKETS, Figures, HUMAN_TAGS, People, Tally};

const STYLE: &str = "\
body{font-family:system-ui,'Noto Sans CJK SC','Noto Sans SC','PingFang SC','Microsoft YaHei',sans-serif;margin:2em;color:#222;max-width:1100px}\
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{font-size:1em;margin-bottom:.3em}\
.meta,.note{color:#555}.meta{margin-top:0}section{margin-bottom:2em}\
.banner{background:#b71c1c;color:#fff;font-weight:bold;padding:.6em 1em;font-size:1.1em}\
dl.figures{display:flex;flex-wrap:wrap;gap:.6em;margin:0}dl.figures div{border:1px solid #ccc;border-radius:4px;padding:.4em .8em;min-width:8em}\
dl.figures dt{font-size:.8em;color:#555}dl.figures dd{margin:0;font-size:1.4em;font-weight:600}\
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border:1px solid #ccc;padding:3px 5px;vertical-align:top;text-align:left;word-break:keep-all}\
th{background:#f3f3f3}table.counts{width:auto}table.counts td{text-align:right}table.counts td:first-child{text-align:left}\
pre{white-space:pre-wrap;word-break:normal;margin:0;font-family:inherit;font-size:12px}svg{display:block;margin-bottom:.5em}\
@page{size:A4;margin:12mm}\
@media print{body{margin:0;max-width:none}section{break-inside:avoid-page}section.list{break-inside:auto}\
h2,h3{break-after:avoid-page;break-inside:avoid}h2::after,h3::after{content:'';display:block;height:7em;margin-bottom:-7em}thead{display:table-header-group}tr,dl.figures div{break-inside:avoid}\
.banner,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}svg{max-width:100%;height:auto}}";

pub(super) fn render(
    campaign: &Campaign,
    status: &Status,
    columns: &[String],
    f: &Figures,
    now: Timestamp,
) -> String {
    let name = esc(&campaign.name);
    let mark = if status.simulated {
        "SIMULATED · "
    } else {
        ""
    };
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{mark}{name} · stepcall report</title><style>{STYLE}</style></head><body>"
    );
    if status.simulated {
        page.push_str(
            "<p class=\"banner\" id=\"simulated\">SIMULATED: this database holds a rehearsal on stepcall's simulator. Nobody was rung; every result, cost and transcript below is made up.</p>",
        );
    }
    let _ = write!(
        page,
        "<h1>{name}</h1><p class=\"meta\">Report made {}. {} Database: {}.</p>",
        esc(&glance(campaign, now)),
        span(campaign, f),
        esc(&campaign.state_path.display().to_string()),
    );
    page += &key_figures(f);
    page += &funnel(campaign, status, f, now);
    page += &by_time(campaign, f);
    let durations: Vec<(String, u64)> = DURATION_BUCKETS
        .iter()
        .map(|l| l.to_string())
        .zip(f.durations)
        .collect();
    let _ = write!(
        page,
        "<section><h2>Call durations (answered)</h2>{}</section>",
        bars(&durations, "#00838f")
    );
    page += &needs_person(campaign, columns, f);
    page += &call_back(campaign, status, columns, f);
    page += &tags(campaign, columns, f);
    page + "</body></html>\n"
}

/// A moment named in a sentence, as stepcall's summaries name it: `2026-12-01 11:00
/// Asia/Shanghai`. Table cells leave the zone to the page's header, which names it (`local`).
fn glance(campaign: &Campaign, at: Timestamp) -> String {
    crate::clock::at_a_glance(&campaign.hours.local(at))
}

/// `at` as `2026-12-01 10:30` in the campaign's zone.
fn local(campaign: &Campaign, at: Timestamp) -> String {
    campaign
        .hours
        .local(at)
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

/// A stored instant (RFC 3339) as `local` shows it.
fn local_text(campaign: &Campaign, at: Option<&str>) -> String {
    at.and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(String::new(), |t| local(campaign, t))
}

/// Which dates the calls span.
fn span(campaign: &Campaign, f: &Figures) -> String {
    let (Some(first), Some(last)) = (f.first_call, f.last_call) else {
        return "No call made yet.".into();
    };
    let (first, last) = (
        campaign.hours.local(first).date(),
        campaign.hours.local(last).date(),
    );
    if first == last {
        format!("Calls on {first}.")
    } else {
        format!("Calls from {first} to {last}.")
    }
}

fn key_figures(f: &Figures) -> String {
    let rate = if f.dialled == 0 {
        "—".to_string()
    } else {
        format!("{:.0}%", f.answered as f64 * 100.0 / f.dialled as f64)
    };
    let (average, per_answer) = if f.answered_calls == 0 {
        ("—".to_string(), "—".to_string())
    } else {
        let n = f.answered_calls as i64;
        (
            seconds(f.answered_seconds / n),
            format!("¥{:.2}", f.cost / n as f64),
        )
    };
    let items = [
        ("contacts", f.contacts.to_string()),
        ("dialled", f.dialled.to_string()),
        ("attempts", f.calls.to_string()),
        ("answer rate", rate),
        ("average duration", average),
        ("cost", format!("¥{:.2}", f.cost)),
        ("cost per answered call", per_answer),
    ];
    let mut html = String::from("<section><h2>Key figures</h2><dl class=\"figures\">");
    for (label, value) in items {
        let _ = write!(html, "<div><dt>{label}</dt><dd>{value}</dd></div>");
    }
    html + "</dl><p class=\"note\">Answer rate: contacts answered of contacts dialled. Attempts count redials too. Average duration and cost per answered call are over answered calls; cost is over every call.</p></section>"
}

/// `42 s`, `1 min 5 s`.
fn seconds(s: i64) -> String {
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// The funnel, and in words why each step is smaller than the one before.
fn funnel(campaign: &Campaign, status: &Status, f: &Figures, now: Timestamp) -> String {
    let steps = [
        ("contacts", f.contacts),
        ("valid", f.valid),
        ("dialled", f.dialled),
        ("answered", f.answered),
        ("tagged", f.tagged),
    ]
    .map(|(s, n)| (s.to_string(), n));
    let mut why = Vec::new();
    for (state, n) in &f.not_valid {
        why.push(match state.as_str() {
            "invalid" => format!(
                "{n} not valid: the number or the rendered requirement is not usable (the export's <code>call_error</code> says why)"
            ),
            _ => format!("{n} duplicate: an earlier row has the same number"),
        });
    }
    for (state, n) in &f.not_dialled {
        why.push(match state.as_str() {
            "suppressed" => format!("{n} suppressed: on the do-not-call list, never dialled"),
            "removed" => format!("{n} removed: the row left the list before its call"),
            "pending" => waiting(campaign, status, *n, now),
            other => format!("{n} {}", esc(other)),
        });
    }
    let mut html = format!(
        "<section><h2>Funnel</h2>{}<p>{} contacts, {} valid, {} dialled.</p>",
        bars(&steps, "#1565c0"),
        f.contacts,
        f.valid,
        f.dialled
    );
    if why.is_empty() {
        html.push_str("<p>Every valid contact was dialled.</p>");
    } else {
        html.push_str("<ul id=\"not-dialled\">");
        for w in why {
            let _ = write!(html, "<li>{w}</li>");
        }
        html.push_str("</ul>");
    }
    html + "</section>"
}

/// Why `n` valid contacts are still waiting for their first call.
fn waiting(campaign: &Campaign, status: &Status, n: u64, now: Timestamp) -> String {
    let mut words = if campaign.hours.is_open(now) {
        format!(
            "{n} waiting to be dialled: a run is still going, or a limit (<code>--max-calls</code>, <code>daily_max</code>) was reached; the next run dials them"
        )
    } else {
        match campaign.hours.next_open(now) {
            Some(at) => format!(
                "{n} waiting for calling hours: the next window opens {}",
                esc(&glance(campaign, at))
            ),
            None => format!("{n} waiting for calling hours"),
        }
    };
    if let Some(until) = status
        .held_back_until
        .as_ref()
        .filter(|_| status.held_back > 0)
    {
        let _ = write!(
            words,
            " ({} held back at the provider's request until {})",
            status.held_back,
            esc(&crate::clock::at_a_glance(until))
        );
    }
    words
}

/// Outcomes by hour of day and by day, charted and counted.
fn by_time(campaign: &Campaign, f: &Figures) -> String {
    let hours: Vec<(String, Tally)> = f
        .by_hour
        .iter()
        .enumerate()
        .map(|(h, t)| (format!("{h:02}"), *t))
        .collect();
    let hour_rows: Vec<(String, Tally)> =
        hours.iter().map(|(h, t)| (format!("{h}:00"), *t)).collect();
    let days: Vec<(String, Tally)> = f.by_day.iter().map(|(d, t)| (d.to_string(), *t)).collect();
    // The chart's columns are too narrow for a year: the table below it has the whole date.
    let day_columns: Vec<(String, Tally)> = f
        .by_day
        .iter()
        .map(|(d, t)| (d.strftime("%m-%d").to_string(), *t))
        .collect();
    let zone = esc(campaign.hours.zone_name());
    format!(
        "<section><h2>Outcomes by hour of day ({zone})</h2>{}{}</section>\
         <section><h2>Outcomes by day ({zone})</h2>{}{}</section>",
        stacked(&hours),
        tally_table("by-hour", "hour", &hour_rows),
        stacked(&day_columns),
        tally_table("by-day", "day", &days),
    )
}

/// The cells that say who a contact is: `columns` of their row, and the number dialled.
fn who(columns: &[String], row: &ExportRow) -> String {
    let mut html = String::new();
    for column in columns {
        let text = match row.cells.get(column) {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        let _ = write!(html, "<td>{}</td>", esc(&text));
    }
    let _ = write!(html, "<td>{}</td>", esc(row.phone.as_deref().unwrap_or("")));
    html
}

/// A table of `people`, named by `columns`, with the cells `rest` makes under `heads`.
fn people_table(
    id: &str,
    columns: &[String],
    people: &People,
    heads: &[&str],
    rest: impl Fn(&ExportRow) -> String,
    nobody: &str,
) -> String {
    if people.rows.is_empty() {
        return format!("<p id=\"{id}\">{nobody}</p>");
    }
    let mut html = format!("<table id=\"{id}\"><thead><tr>");
    for head in columns
        .iter()
        .map(String::as_str)
        .chain(["phone"])
        .chain(heads.iter().copied())
    {
        let _ = write!(html, "<th>{}</th>", esc(head));
    }
    html.push_str("</tr></thead><tbody>");
    for row in &people.rows {
        let _ = write!(html, "<tr>{}{}</tr>", who(columns, row), rest(row));
    }
    html.push_str("</tbody></table>");
    if people.more > 0 {
        let _ = write!(
            html,
            "<p class=\"note\">… and {} more: <code>stepcall export</code> lists everyone.</p>",
            people.more
        );
    }
    html
}

fn needs_person(campaign: &Campaign, columns: &[String], f: &Figures) -> String {
    let table = people_table(
        "needs-a-person",
        columns,
        &f.needs_person,
        &["state", "tags", "reason", "last call", "transcript"],
        |r| {
            // An answered call is here for its tags; any other for what went wrong, in
            // stepcall's words and the provider's (空号, 关机, ...).
            let mut reason: Vec<&str> = r.error.as_deref().into_iter().collect();
            if r.state != "answered" {
                reason.extend(r.status_raw.as_deref());
            }
            format!(
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td>",
                esc(&r.state),
                esc(r.tags.as_deref().unwrap_or("")),
                esc(&reason.join(" · ")),
                local_text(campaign, r.last_dialed_at.as_deref()),
                esc(r.transcript.as_deref().unwrap_or(""))
            )
        },
        "No call needs a person.",
    );
    format!(
        "<section class=\"list\"><h2>Calls that need a person</h2><p class=\"note\">Failed calls, calls stepcall cannot tell were placed (uncertain), results it could not read (unknown), and the people tagged {}.</p>{table}</section>",
        HUMAN_TAGS.join(" or ")
    )
}

fn call_back(campaign: &Campaign, status: &Status, columns: &[String], f: &Figures) -> String {
    let table = people_table(
        "call-back",
        columns,
        &f.call_back,
        &["last outcome", "attempts", "last call"],
        |r| {
            format!(
                "<td>{}</td><td>{}</td><td>{}</td>",
                esc(&r.state),
                r.attempts,
                local_text(campaign, r.last_dialed_at.as_deref())
            )
        },
        "Nobody to call back.",
    );
    let mut note = String::from(
        "No-answers and busies after their last attempt: stepcall will not ring them again (their redials are used up, or <code>redial</code> does not cover that outcome), and their numbers are not on the do-not-call list.",
    );
    if status.redials_waiting > 0 {
        let _ = write!(
            note,
            " {} more will be tried again by stepcall",
            status.redials_waiting
        );
        if let Some(next) = &status.next_redial_at {
            let _ = write!(
                note,
                ", the first at {}",
                esc(&crate::clock::at_a_glance(next))
            );
        }
        note.push('.');
    }
    format!(
        "<section class=\"list\"><h2>Call back</h2><p class=\"note\">{note}</p>{table}</section>"
    )
}

/// Each tag's count, then its people: the tags that need a person first.
fn tags(campaign: &Campaign, columns: &[String], f: &Figures) -> String {
    if f.tags.is_empty() {
        return "<section><h2>Tags</h2><p>No tags yet.</p></section>".into();
    }
    let mut order: Vec<&String> = f.tags.keys().collect();
    order.sort_by_key(|t| {
        (
            HUMAN_TAGS
                .iter()
                .position(|h| h == t)
                .unwrap_or(HUMAN_TAGS.len()),
            *t,
        )
    });
    let counts: Vec<(String, u64)> = order
        .iter()
        .map(|t| ((*t).clone(), f.tags[*t].rows.len() as u64 + f.tags[*t].more))
        .collect();
    let mut html = format!(
        "<section class=\"list\"><h2>Tags</h2>{}",
        bars(&counts, "#6a1b9a")
    );
    for (tag, n) in &counts {
        let _ = write!(html, "<h3>{} ({n})</h3>", esc(tag));
        html += &people_table(
            &format!("tag-{}", esc(tag)),
            columns,
            &f.tags[tag],
            &["state", "last call"],
            |r| {
                format!(
                    "<td>{}</td><td>{}</td>",
                    esc(&r.state),
                    local_text(campaign, r.last_dialed_at.as_deref())
                )
            },
            "",
        );
    }
    html + "</section>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(seconds(42), "42 s");
        assert_eq!(seconds(65), "1 min 5 s");
    }
}
