//! A row's identity across imports, and how many contacts a row makes.
//!
//! Both `Plan::next_row` (which judges rows) and `plan::fingerprints` (which lists the rows still
//! in the list, before an import marks the others `removed`) go through these, so the two can
//! never disagree about which row is which. The values are stored in every state database, so
//! they must never change: a test pins them.

use std::collections::HashMap;

use crate::fnv::{FNV_OFFSET, IntegerKeys, fnv_step, fnv1a};
use crate::input::contacts::Row;
use crate::input::phone;

/// The numbers of a row, each of them one contact: its phone cell normalised (split into
/// several with `multi_phone: split`), or why it has none.
pub fn numbers_of(row: &Row, phone_index: usize, split: bool) -> Result<Vec<String>, String> {
    match &row.problem {
        Some(problem) => Err(problem.clone()),
        None => phone::normalize_cell(&row.cells[phone_index], split),
    }
}

/// The identities of the contacts a row makes, given its own (`fingerprint`): one per number
/// it holds, or its own alone when it holds none that can be dialled.
pub fn identities(
    base: i64,
    numbers: &Result<Vec<String>, String>,
) -> impl Iterator<Item = i64> + use<> {
    let parts = numbers.as_ref().map_or(1, |n| n.len().max(1));
    (0..parts).map(move |part| part_fingerprint(base, part))
}

/// The identity of the `part`-th number of a row (the row's own for the first).
pub fn part_fingerprint(base: i64, part: usize) -> i64 {
    if part == 0 {
        base
    } else {
        fnv1a(
            base.to_le_bytes()
                .into_iter()
                .chain((part as u64).to_le_bytes()),
        ) as i64
    }
}

/// A row's identity across imports: its content, and how often that content came before.
/// Stored in every state database, so it must never change (a test pins it).
pub fn fingerprint(occurrences: &mut Occurrences, cells: &[String]) -> i64 {
    // `fnv1a` of the cells, each followed by 0x1f, written out as one loop: this runs for
    // every row of every import, and the chained iterators cost twice as much.
    let mut content = FNV_OFFSET;
    for cell in cells {
        for &b in cell.as_bytes() {
            content = fnv_step(content, b);
        }
        content = fnv_step(content, 0x1f);
    }
    let seen = occurrences.entry(content).or_insert(0);
    *seen += 1;
    fnv1a(content.to_le_bytes().into_iter().chain(seen.to_le_bytes())) as i64
}

/// How often each row content (by its hash) came before.
pub type Occurrences = HashMap<u64, u32, IntegerKeys>;

#[cfg(test)]
mod tests {
    /// Databases written by earlier builds know their rows by these values: a change here would
    /// make every row of a running campaign look new on its next import.
    #[test]
    fn row_identities_are_the_ones_earlier_builds_stored() {
        let mut seen = super::Occurrences::default();
        let cells: Vec<String> = ["王芳", "13800138000", "", "x,y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let first = super::fingerprint(&mut seen, &cells);
        let again = super::fingerprint(&mut seen, &cells);
        assert_eq!(first, -3066504174331187528);
        assert_eq!(again, -5376846277707438997);
        assert_eq!(super::part_fingerprint(first, 1), -7522197963723461721);
    }
}
