//! The report's charts, drawn here as inline SVG (no script, no library, nothing fetched).
//! Every bar carries its count as printed text, not only as a hover title: a printout or a
//! mailed copy has no mouse.

use std::fmt::Write as _;

use super::esc;
use super::figures::{OUTCOMES, Tally};

/// The colour of each of `OUTCOMES`.
const COLORS: [&str; OUTCOMES.len()] = ["#2e7d32", "#f9a825", "#ef6c00", "#c62828", "#757575"];

/// A horizontal bar chart, each bar labelled and counted.
pub(super) fn bars(items: &[(String, u64)], color: &str) -> String {
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

/// Stacked columns, one per label, one colour per outcome, the column's total printed above
/// it. With many columns only every few are labelled, so labels never overlap.
pub(super) fn stacked(columns: &[(String, Tally)]) -> String {
    let max = columns
        .iter()
        .map(|(_, t)| t.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let step = (680 / columns.len().max(1)).clamp(6, 60) as u64;
    let width = 20 + step * columns.len() as u64;
    let label_every = (columns.len() / 12).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"230\" role=\"img\">",
        width.max(420)
    );
    for (i, (label, tally)) in columns.iter().enumerate() {
        let x = 10 + i as u64 * step;
        let bar = step * 3 / 4;
        let mut top = 190.0;
        for (k, n) in tally.0.iter().enumerate().filter(|(_, n)| **n > 0) {
            let h = *n as f64 / max as f64 * 150.0;
            top -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{top:.1}\" width=\"{bar}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {} {n}</title></rect>",
                COLORS[k],
                esc(label),
                OUTCOMES[k]
            );
        }
        if tally.total() > 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                x + bar / 2,
                top - 3.0,
                tally.total()
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x}\" y=\"208\" font-size=\"11\">{}</text>",
                esc(label)
            );
        }
    }
    for (k, outcome) in OUTCOMES.iter().enumerate() {
        let x = 10 + k * 85;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"218\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"227\" font-size=\"11\">{outcome}</text>",
            COLORS[k],
            x + 13
        );
    }
    svg + "</svg>"
}

/// The counts behind `stacked`, as a table, the rows without calls left out.
pub(super) fn tally_table(id: &str, first: &str, rows: &[(String, Tally)]) -> String {
    let mut html = format!("<table id=\"{id}\" class=\"counts\"><thead><tr><th>{first}</th>");
    for outcome in OUTCOMES {
        let _ = write!(html, "<th>{outcome}</th>");
    }
    html.push_str("<th>calls</th></tr></thead><tbody>");
    for (label, tally) in rows.iter().filter(|(_, t)| t.total() > 0) {
        let _ = write!(html, "<tr><td>{}</td>", esc(label));
        for n in tally.0 {
            let _ = write!(html, "<td>{n}</td>");
        }
        let _ = write!(html, "<td>{}</td></tr>", tally.total());
    }
    html + "</tbody></table>"
}
