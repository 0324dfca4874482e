//! `report`: one self-contained HTML file that shows how a campaign went.
//!
//! For the sales manager, not the engineer: the funnel (contacts → valid → dialled → answered
//! → tagged), outcomes by hour of day, call durations, cost so far, tags, and the calls that
//! need a human (uncertain, failed, opt-outs, reschedules) with their transcripts. Charts are
//! inline SVG drawn here; there are no scripts, fonts or anything else fetched from the network,
//! so the file opens anywhere, offline, and can be mailed as it is. Every text from the
//! database (names, transcripts: what strangers said) is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::campaign::Campaign;
use crate::errors::Result;
use crate::state::{ExportRow, Store};

/// Tags whose calls need a person to follow up.
const HUMAN_TAGS: [&str; 2] = ["opt_out", "reschedule"];

#[derive(Default)]
struct Figures {
    contacts: u64,
    valid: u64,
    dialled: u64,
    answered: u64,
    tagged: u64,
    cost: f64,
    by_hour: BTreeMap<i8, BTreeMap<String, u64>>,
    durations: [u64; 5],
    tags: BTreeMap<String, u64>,
    needs_human: Vec<ExportRow>,
}

const DURATION_BUCKETS: [&str; 5] = ["< 30 s", "30–60 s", "1–2 min", "2–5 min", "≥ 5 min"];

pub fn html(store: &Store, campaign: &Campaign) -> Result<String> {
    let mut f = Figures::default();
    store.for_each_export_row(|row| {
        f.contacts += 1;
        if !matches!(row.state.as_str(), "invalid" | "duplicate") {
            f.valid += 1;
        }
        if row.attempts > 0 {
            f.dialled += 1;
        }
        if row.state == "answered" {
            f.answered += 1;
            let d = row.duration_seconds.unwrap_or(0);
            let bucket = match d {
                ..30 => 0,
                30..60 => 1,
                60..120 => 2,
                120..300 => 3,
                _ => 4,
            };
            f.durations[bucket] += 1;
        }
        f.cost += row.cost.unwrap_or(0.0);
        let tags: Vec<String> = row
            .tags
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if !tags.is_empty() {
            f.tagged += 1;
        }
        for tag in &tags {
            *f.tags.entry(tag.clone()).or_default() += 1;
        }
        if let Some(at) = row
            .first_dialed_at
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            let hour = campaign.hours.local(at).hour();
            *f.by_hour
                .entry(hour)
                .or_default()
                .entry(row.state.clone())
                .or_default() += 1;
        }
        let human = matches!(row.state.as_str(), "uncertain" | "failed")
            || tags.iter().any(|t| HUMAN_TAGS.contains(&t.as_str()));
        if human {
            f.needs_human.push(row);
        }
        Ok(())
    })?;
    let first_column = store.columns()?.into_iter().next().unwrap_or_default();
    Ok(render(campaign, &f, &first_column))
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A horizontal bar chart as inline SVG.
fn bars(items: &[(String, u64)], color: &str) -> String {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row = 26;
    let height = row * items.len().max(1) + 4;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"560\" height=\"{height}\" role=\"img\">"
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = i * row + 2;
        let w = (*n as f64 / max as f64 * 360.0).round() as u64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text><rect x=\"140\" y=\"{y}\" width=\"{w}\" height=\"20\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"13\">{n}</text>",
            y + 15,
            esc(label),
            145 + w,
            y + 15
        );
    }
    svg + "</svg>"
}

/// Stacked columns per hour of day, one colour per outcome.
fn hours_chart(by_hour: &BTreeMap<i8, BTreeMap<String, u64>>) -> String {
    let colors = [
        ("answered", "#2e7d32"),
        ("no_answer", "#f9a825"),
        ("busy", "#ef6c00"),
        ("failed", "#c62828"),
    ];
    let max = by_hour
        .values()
        .map(|m| m.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"200\" role=\"img\">",
    );
    for hour in 0..24i8 {
        let x = 10 + hour as u64 * 24;
        let mut top = 170.0;
        if let Some(states) = by_hour.get(&hour) {
            for (state, n) in states {
                let color = colors
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or("#757575", |(_, c)| c);
                let h = *n as f64 / max as f64 * 150.0;
                top -= h;
                let _ = write!(
                    svg,
                    "<rect x=\"{x}\" y=\"{top:.1}\" width=\"18\" height=\"{h:.1}\" fill=\"{color}\"><title>{hour}:00 {state} {n}</title></rect>"
                );
            }
        }
        if hour % 3 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x}\" y=\"190\" font-size=\"11\">{hour:02}</text>"
            );
        }
    }
    let mut legend = String::new();
    for (i, (state, color)) in colors.iter().enumerate() {
        let x = 300 + i * 75;
        let _ = write!(
            legend,
            "<rect x=\"{x}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"13\" font-size=\"10\">{state}</text>",
            x + 13
        );
    }
    svg + &legend + "</svg>"
}

/// `first_column` names each contact in the table (the list's first column, usually a name).
fn render(campaign: &Campaign, f: &Figures, first_column: &str) -> String {
    let funnel = [
        ("contacts".to_string(), f.contacts),
        ("valid".to_string(), f.valid),
        ("dialled".to_string(), f.dialled),
        ("answered".to_string(), f.answered),
        ("tagged".to_string(), f.tagged),
    ];
    let durations: Vec<(String, u64)> = DURATION_BUCKETS
        .iter()
        .map(|l| l.to_string())
        .zip(f.durations)
        .collect();
    let tags: Vec<(String, u64)> = f.tags.iter().map(|(t, n)| (t.clone(), *n)).collect();
    let mut rows = String::new();
    for r in &f.needs_human {
        let name = r
            .cells
            .values()
            .next()
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            esc(name),
            esc(r.phone.as_deref().unwrap_or("")),
            esc(&r.state),
            esc(r.tags.as_deref().unwrap_or("")),
            esc(r.error.as_deref().unwrap_or("")),
            esc(r.transcript.as_deref().unwrap_or(""))
        );
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"6\">No call needs a person.</td></tr>".into();
    }
    let tags_chart = if tags.is_empty() {
        "<p>No tags yet.</p>".to_string()
    } else {
        bars(&tags, "#6a1b9a")
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{name} · stepcall report</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}h1{{font-size:1.5em}}section{{margin-bottom:2em}}\
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}}\
pre{{white-space:pre-wrap;margin:0;font-size:12px}}.cost{{font-size:1.4em}}</style></head><body>\
<h1>{name}</h1><p>Made by stepcall from {db}.</p>\
<section><h2>Funnel</h2>{funnel}</section>\
<section><h2>Outcomes by hour of day ({zone})</h2>{hours}</section>\
<section><h2>Call durations (answered)</h2>{durations}</section>\
<section><h2>Cost so far</h2><p class=\"cost\">¥{cost:.2}</p></section>\
<section><h2>Tags</h2>{tags}</section>\
<section><h2>Calls that need a person</h2><table><tr><th>{first}</th><th>phone</th><th>state</th><th>tags</th><th>note</th><th>transcript</th></tr>{rows}</table></section>\
</body></html>\n",
        name = esc(&campaign.name),
        db = esc(&campaign.state_path.display().to_string()),
        funnel = bars(&funnel, "#1565c0"),
        zone = esc(campaign.hours.zone_name()),
        hours = hours_chart(&f.by_hour),
        durations = bars(&durations, "#00838f"),
        cost = f.cost,
        tags = tags_chart,
        first = esc(first_column),
    )
}
