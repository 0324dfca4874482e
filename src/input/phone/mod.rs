//! Phone numbers: the one place where a cell from a contact list becomes a number to dial.
//!
//! The normalised number is a contact's identity (duplicates, the database key, the idempotency
//! key), so it must be the same string however the user typed it: `+86 138-0013-8000`,
//! `0086 13800138000` and `138 0013 8000` all become `13800138000`, and a landline keeps its area
//! code (`010-6552 9988` becomes `01065529988`). Which digits make a valid number, and how it is
//! dialled within China, is libphonenumber's verdict ([`china`], on its data in [`metadata`]);
//! a committed table of its answers for 20,000 messy cells holds this module to it.
//!
//! This module reads the text around the digits, which libphonenumber reads differently from a
//! person: it turns letters into keypad digits (`(office)` becomes 633423) and an Excel `.0`
//! into a digit. Cells come from Excel, so it reads full-width digits and punctuation
//! (`１３８－００１３`), a trailing `.0` from a number column, and a note beside the number
//! (`138 0013 8000 (office)`, `张三13800138000`). The digits that may disappear are an
//! international prefix (`+86`, `0086`, `86`), a trunk `0`, a carrier's dialling prefix
//! libphonenumber strips (`17951`) and an Excel `.0`; the one that may appear is the trunk `0`
//! libphonenumber dials in front of a landline or 96xxx number (`1096118` is `01096118`).
//! Anything else that is not clearly one number is refused with a reason the user can act on:
//! scientific notation, extensions, letters touching the digits, digits beside the number, and
//! several numbers in one cell (unless the campaign asks to split them, see [`normalize_cell`]).

mod china;
mod metadata;

/// The libphonenumber release whose data for China decides which numbers are valid.
pub const METADATA_VERSION: &str = metadata::VERSION;

/// Why a cell is not a number stepcall will dial. The text is shown to the user as the reason.
pub type Reason = String;

/// Normalises `raw` to the national digits of a valid mainland-China number.
///
/// Behaves like [`normalize_cell`] with `split` off: a cell holding several numbers is an error.
pub fn normalize(raw: &str) -> Result<String, Reason> {
    let mut numbers = normalize_cell(raw, false)?;
    debug_assert_eq!(numbers.len(), 1);
    Ok(numbers.swap_remove(0))
}

/// Normalises a contact-list cell that may hold several numbers.
///
/// With one number, returns it alone. With several (`138…/139…`, `138…;139…`,
/// `13800138000 13900139000`), returns an error unless `split` (the campaign's
/// `multi_phone: split`) is set; then it returns each number once, in the order of the cell.
/// If any of the numbers is not valid, the whole cell is an error naming it.
pub fn normalize_cell(raw: &str, split: bool) -> Result<Vec<String>, Reason> {
    match plain_mobile_cell(raw) {
        Some(number) => Ok(vec![number]),
        None => read_cell(raw, split),
    }
}

/// The common cell, eleven digits of a valid mobile and nothing else, read straight away:
/// `read_cell` would reach the same number through every rule above (a property test holds
/// the two together). Anything else, valid or not, takes the long way.
fn plain_mobile_cell(raw: &str) -> Option<String> {
    if is_plain_mobile(raw) {
        // libphonenumber's parse hands such digits back as they are (see `is_plain_mobile`).
        china::dial(raw)
    } else {
        None
    }
}

fn read_cell(raw: &str, split: bool) -> Result<Vec<String>, Reason> {
    let folded = fold(raw);
    let text = folded.trim();
    if text.is_empty() {
        return Err("the phone number is empty".to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    // libphonenumber reads no more than this; a cell past it holds more than a number and a
    // note, and reading it for numbers would take time for nothing.
    if chars.len() > MAX_CELL_CHARS {
        return Err(format!(
            "the phone cell holds {} characters, more than the {MAX_CELL_CHARS} a phone number and a note need: keep only the number in it",
            chars.len()
        ));
    }
    if let Some(c) = chars.iter().find(|c| c.is_numeric() && !c.is_ascii_digit()) {
        return Err(format!(
            "`{text}` contains `{c}`, which stepcall does not read as a digit: type the number with the digits 0-9"
        ));
    }
    if let Some(token) = scientific_notation(&chars) {
        return Err(format!(
            "`{token}` is in scientific notation: Excel stored the phone number as a number and may have lost its last digits. In Excel, format the phone column as Text, type or paste the numbers again from the original source, and save again"
        ));
    }
    if has_thousands_separators(text) {
        return Err(format!(
            "`{text}` has thousands separators: Excel formatted the phone column as a number. In Excel, format the phone column as Text, remove the commas, and save again"
        ));
    }

    let chunks = chunks(&chars);
    if chunks.is_empty() {
        return Err(format!(
            "`{text}` holds no phone number: a mobile has 11 digits starting with 1, a landline starts with its area code (010, 021, 0755, ...)"
        ));
    }
    // An extension written after its number (`13800138000 ext 12`, `x12`, `转12`, `#12`).
    for pair in chunks.windows(2) {
        let between: String = chars[pair[0].last_digit + 1..pair[1].first_digit]
            .iter()
            .filter(|c| {
                !(c.is_whitespace() || matches!(c, ':' | '.' | '-' | '(' | ')' | '[' | ']' | '+'))
            })
            .flat_map(|c| c.to_lowercase())
            .collect();
        if EXTENSION_MARKERS.contains(&between.as_str()) && parse_one(&pair[0].core).is_ok() {
            return Err(extension_error(text, &pair[1].core));
        }
    }
    for chunk in &chunks {
        if let Some(c) = letter_touching(&chars, chunk) {
            return Err(format!(
                "`{text}` has `{c}` touching the digits: a letter may be a mistyped digit (O for 0, l for 1) and stepcall never guesses; keep only the number, or put a space between it and a note"
            ));
        }
    }

    let mut numbers = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let unreadable = match resolve(&chunk.core) {
            Ok(found) => {
                numbers.extend(found);
                continue;
            }
            Err(unreadable) => unreadable,
        };
        if chunks.len() == 1 && unreadable.pieces.len() == 1 {
            return Err(unreadable.reason);
        }
        let short = chunk.core.chars().all(|c| c.is_ascii_digit()) && chunk.core.len() <= 6;
        if short && chunks.iter().any(|c| resolve(&c.core).is_ok()) {
            return Err(format!(
                "`{text}` has digits beside the phone number (`{}`): stepcall will not guess which digits to dial; keep only the number in the cell (a note without digits is fine)",
                chunk.core
            ));
        }
        let mut pieces: Vec<&str> = chunks[..index].iter().map(|c| c.core.as_str()).collect();
        pieces.extend(unreadable.pieces.iter().map(String::as_str));
        pieces.extend(chunks[index + 1..].iter().map(|c| c.core.as_str()));
        return Err(format!(
            "the cell is read as several numbers ({}), and {}; put one number per row",
            pieces.join(", "),
            unreadable.reason
        ));
    }

    let mut unique: Vec<String> = Vec::new();
    for n in &numbers {
        if !unique.contains(n) {
            unique.push(n.clone());
        }
    }
    if numbers.len() == 1 || split {
        return Ok(unique);
    }
    if unique.len() == 1 {
        return Err(format!(
            "the cell holds {} more than once: keep it once, or set `multi_phone: split` in the campaign",
            unique[0]
        ));
    }
    Err(format!(
        "the cell holds several numbers ({}): put one number per row, or set `multi_phone: split` in the campaign",
        numbers.join(", ")
    ))
}

/// The longest phone cell read: libphonenumber's own limit on what it parses.
const MAX_CELL_CHARS: usize = 250;

/// What, between a number and the digits after it, marks an extension (lower case, without
/// spaces and `:`/`.`/`-`/brackets).
const EXTENSION_MARKERS: [&str; 11] = [
    "ext",
    "extn",
    "extension",
    "x",
    "#",
    "转",
    "分机",
    "分机号",
    "转分机",
    "内线",
    "ext#",
];

/// Characters that may appear between the digits of one number.
fn is_joiner(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '[' | ']' | '+')
}

/// Full-width forms (Excel with a Chinese input method) to ASCII, every dash to `-`, every kind
/// of space but a tab to ` `, and invisible characters to nothing.
fn fold(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' => '-',
            // A tab between digits is a column pasted beside another, not spacing.
            '\t' => '\t',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        // Invisible characters pasted from the web (soft hyphen, zero-width space and joiners,
        // word joiner, BOM) carry nothing.
        .filter(|c| {
            !matches!(
                c,
                '\u{AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
            )
        })
        .collect()
}

/// The first token like `1.38001E+10`, `1.38E10` or `1,38e+10`, if any.
fn scientific_notation(chars: &[char]) -> Option<String> {
    for (e, &c) in chars.iter().enumerate() {
        if !matches!(c, 'e' | 'E') || e == 0 || !chars[e - 1].is_ascii_digit() {
            continue;
        }
        let mut start = e;
        while start > 0 && chars[start - 1].is_ascii_digit() {
            start -= 1;
        }
        if start >= 2 && matches!(chars[start - 1], '.' | ',') && chars[start - 2].is_ascii_digit()
        {
            start -= 1;
            while start > 0 && chars[start - 1].is_ascii_digit() {
                start -= 1;
            }
        }
        if start > 0 && chars[start - 1].is_ascii_alphabetic() {
            continue;
        }
        let mut end = e + 1;
        if end < chars.len() && matches!(chars[end], '+' | '-') {
            end += 1;
        }
        let exponent = end;
        while end < chars.len() && chars[end].is_ascii_digit() {
            end += 1;
        }
        if end == exponent || end < chars.len() && chars[end].is_ascii_alphanumeric() {
            continue;
        }
        return Some(chars[start..end].iter().collect());
    }
    None
}

/// `13,800,138,000`: a number column shown with thousands separators.
fn has_thousands_separators(text: &str) -> bool {
    let integer = match text.split_once('.') {
        Some((integer, fraction)) if fraction.chars().all(|c| c.is_ascii_digit()) => integer,
        Some(_) => return false,
        None => text,
    };
    let groups: Vec<&str> = integer.split(',').collect();
    groups.len() >= 3
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
}

/// A run of digits and joiners in a cell: one number, or several separated by spaces.
struct Chunk {
    /// The run without leading and trailing joiners that belong to the text around it.
    core: String,
    /// Index in the cell of the run's first and last ASCII digit.
    first_digit: usize,
    last_digit: usize,
}

fn chunks(chars: &[char]) -> Vec<Chunk> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !(chars[i].is_ascii_digit() || is_joiner(chars[i])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || is_joiner(chars[i])) {
            i += 1;
        }
        let run = &chars[start..i];
        let Some(first) = run.iter().position(char::is_ascii_digit) else {
            continue;
        };
        let last = run.iter().rposition(char::is_ascii_digit).unwrap_or(first);
        let from = run
            .iter()
            .position(|c| !matches!(c, ' ' | '-' | '.' | ')' | ']'))
            .unwrap_or(first);
        let to = run
            .iter()
            .rposition(|c| !matches!(c, ' ' | '-' | '.' | '(' | '[' | '+'))
            .unwrap_or(last);
        found.push(Chunk {
            core: run[from..=to].iter().collect(),
            first_digit: start + first,
            last_digit: start + last,
        });
    }
    found
}

/// A Latin letter touching the digits, directly or through a dash (`1380013800O`,
/// `138-FLOWERS`): it may be a mistyped digit, so the cell is refused. A Chinese character is
/// text, even one that is a numeral: 三 in `张三13800138000` is part of a name.
fn letter_touching(chars: &[char], chunk: &Chunk) -> Option<char> {
    let suspicious = |c: char| c.is_ascii_alphabetic();
    let first = chunk.first_digit;
    let before = [first.checked_sub(1), first.checked_sub(2)].map(|i| i.map(|i| chars[i]));
    let last = chunk.last_digit;
    let after = [chars.get(last + 1).copied(), chars.get(last + 2).copied()];
    for [next, beyond] in [before, after] {
        match (next, beyond) {
            (Some(c), _) if suspicious(c) => return Some(c),
            (Some('-'), Some(c)) if c.is_ascii_alphabetic() => return Some(c),
            _ => {}
        }
    }
    None
}

/// Why a run of digits and joiners is not one or more valid numbers.
struct Unreadable {
    /// The run as read: itself, or the numbers it seems to hold (the last one invalid).
    pieces: Vec<String>,
    reason: Reason,
}

/// The numbers in one run of digits and joiners.
fn resolve(core: &str) -> Result<Vec<String>, Unreadable> {
    let alone = |reason: Reason| Unreadable {
        pieces: vec![core.to_string()],
        reason,
    };
    let whole = parse_one(core);
    if is_decimal(core) {
        return whole.map(|n| vec![n]).map_err(alone);
    }
    let groups: Vec<&str> = core.split(' ').filter(|g| !g.is_empty()).collect();
    let (ways, first_split) = partitions(&groups);
    if ways > 1 {
        return Err(alone(format!(
            "`{core}` can be read as more than one set of numbers: stepcall will not guess; put one number per row"
        )));
    }
    if let Ok(number) = whole {
        if let Some(extension) = trailing_extension(core) {
            return Err(alone(format!(
                "`{core}` may end in an extension (`{extension}`): stepcall cannot dial extensions and will not guess; put the main number alone in the cell, without a separator before its last digits"
            )));
        }
        return Ok(vec![number]);
    }
    if ways == 1 {
        let mut numbers = Vec::new();
        let mut i = 0;
        while i < groups.len() {
            let j = first_split[i];
            numbers.push(parse_one(&groups[i..j].join(" ")).map_err(alone)?);
            i = j;
        }
        return Ok(numbers);
    }
    if let Some(extension) = trailing_extension(core) {
        return Err(alone(extension_error(core, extension)));
    }
    // Valid numbers followed by something that is not one: name that part.
    let mut pieces = Vec::new();
    let mut i = 0;
    while let Some(j) = (i + 1..=groups.len()).find(|&j| parse_one(&groups[i..j].join(" ")).is_ok())
    {
        pieces.push(groups[i..j].join(" "));
        i = j;
    }
    if !pieces.is_empty() && i < groups.len() {
        let rest = groups[i..].join(" ");
        let reason = parse_one(&rest)
            .err()
            .unwrap_or_else(|| invalid(&rest, &rest));
        pieces.push(rest);
        return Err(Unreadable { pieces, reason });
    }
    whole.map(|n| vec![n]).map_err(alone)
}

/// How many ways (0, 1, or 2 for "more than one") `groups` split into valid numbers, and for
/// each group index the end of the first part starting there, in the first way found.
fn partitions(groups: &[&str]) -> (u8, Vec<usize>) {
    let n = groups.len();
    let mut ways = vec![0u8; n + 1];
    let mut first_end = vec![n; n + 1];
    ways[n] = 1;
    for i in (0..n).rev() {
        let mut digits = 0;
        for j in i + 1..=n {
            digits += groups[j - 1].chars().filter(char::is_ascii_digit).count();
            if digits > 17 {
                break;
            }
            if ways[j] > 0 && parse_one(&groups[i..j].join(" ")).is_ok() {
                if ways[i] == 0 {
                    first_end[i] = j;
                }
                ways[i] = (ways[i] + ways[j]).min(2);
            }
        }
    }
    (ways[0], first_end)
}

/// The last group of digits when it is short, follows a space or a dash, and what comes before
/// it is a valid number on its own (`010-6552 9988-12`): it reads as an extension.
fn trailing_extension(core: &str) -> Option<&str> {
    let body = core.trim_end_matches(|c: char| !c.is_ascii_digit());
    let start = body.rfind(|c: char| !c.is_ascii_digit())? + 1;
    let group = &body[start..];
    let separator = body[..start].chars().next_back()?;
    if !(1..=6).contains(&group.len()) || !matches!(separator, ' ' | '-') {
        return None;
    }
    parse_one(&body[..start]).ok().map(|_| group)
}

fn extension_error(text: &str, extension: &str) -> Reason {
    format!(
        "`{text}` has an extension (`{extension}`): stepcall cannot dial extensions; put the main number alone in the cell"
    )
}

/// Only digits and one dot with digits on both sides: a number with a decimal part.
fn is_decimal(text: &str) -> bool {
    match text.split_once('.') {
        Some((integer, fraction)) => {
            !integer.is_empty()
                && !fraction.is_empty()
                && integer.chars().all(|c| c.is_ascii_digit())
                && fraction.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Normalises one number, written with digits and joiners only.
fn parse_one(part: &str) -> Result<String, Reason> {
    let text = part.trim();
    let mut body = text;
    if is_decimal(text) {
        let (integer, fraction) = text.split_once('.').unwrap_or((text, ""));
        if fraction.len() > 2 || fraction.chars().any(|c| c != '0') {
            return Err(format!(
                "`{text}` is a decimal number, not a phone number: keep only the digits of the number"
            ));
        }
        body = integer;
    } else if let Some((_, last)) = text.rsplit_once('.')
        && (1..=2).contains(&last.len())
        && last.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!(
            "`{text}` ends in `.{last}`, which reads as a decimal part, not as digits of a phone number: remove it"
        ));
    }
    let mut plus = false;
    let mut digits = String::new();
    for c in body.chars() {
        match c {
            '0'..='9' => digits.push(c),
            // `++86`: libphonenumber reads any number of leading pluses as one.
            '+' if digits.is_empty() => plus = true,
            '+' => {
                return Err(format!(
                    "`{text}` has a + inside the number: only a leading +86 may be written with +"
                ));
            }
            _ => {}
        }
    }
    if digits.is_empty() {
        return Err(format!("`{text}` is not a phone number"));
    }
    judge(text, plus, &digits)
}

/// The number libphonenumber reads from `digits` (after a `+` if `plus`), in the form dialled
/// within China, or why it is none.
fn judge(text: &str, plus: bool, digits: &str) -> Result<String, Reason> {
    let parsed = china::parse(plus, digits).map_err(|_| invalid(text, digits))?;
    if parsed.country_code != 86 {
        return Err(format!(
            "`{text}` is not a mainland China number (country code +{}): Stepone only calls +86 numbers",
            parsed.country_code
        ));
    }
    china::dial(&parsed.national).ok_or_else(|| invalid(text, &parsed.national))
}

/// Eleven digits starting 13 to 19, but not 179: libphonenumber reads such digits as they are,
/// since neither its international prefix nor its national prefix for parsing
/// (`00|1(?:[12]\d|79)\d\d00`, `(1(?:[12]\d|79)\d\d)|0`) can match there, and they do
/// not start with 86. A test holds this fast path to the long way.
fn is_plain_mobile(digits: &str) -> bool {
    let b = digits.as_bytes();
    b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && !digits.starts_with("179")
}

/// Carrier codes that, dialled first, route a call through a cheaper carrier (IP dialling).
/// libphonenumber strips those its national prefix pattern knows (`17951`, `12593`, ...);
/// these are named when they are left in front of a number it cannot read.
const DIALLING_PREFIXES: [&str; 12] = [
    "17951", "17911", "17909", "17908", "17931", "17921", "12593", "10193", "11808", "17960",
    "17990", "96688",
];

/// Why `text` (whose digits libphonenumber read as `national`) is no number to dial, as
/// precisely as the digits allow.
fn invalid(text: &str, national: &str) -> Reason {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    // Read once, never through `judge`, which calls this again for what it cannot read.
    let valid_alone = |rest: &str| {
        china::parse(false, rest)
            .ok()
            .filter(|parsed| parsed.country_code == 86)
            .and_then(|parsed| china::dial(&parsed.national))
            .is_some()
    };
    if let Some(prefix) = DIALLING_PREFIXES.iter().find(|p| {
        digits.len() > p.len() + 6 && digits.starts_with(**p) && valid_alone(&digits[p.len()..])
    }) {
        return format!(
            "`{text}` starts with {prefix}, a carrier's IP-dialling prefix: stepcall dials the number alone; remove {prefix} and keep the number after it"
        );
    }
    // Only for digits written as a mobile: after a trunk 0 they were meant as a landline.
    let written_as_mobile = digits
        .strip_suffix(national)
        .is_some_and(|before| !before.ends_with('0'));
    if national.len() == 11 && national.starts_with('1') && written_as_mobile {
        // The shortest prefix that no mobile number continues.
        let unused = [3, 4]
            .into_iter()
            .map(|len| &national[..len])
            .find(|prefix| {
                (0..10).all(|d| {
                    let candidate = format!("{prefix}{d}{}", "0".repeat(10 - prefix.len()));
                    china::kind(&candidate) != china::Kind::Mobile
                })
            });
        if let Some(prefix) = unused {
            return format!(
                "`{text}`: {prefix} is not a mobile prefix in use, so no mobile starts with it; check the number with its owner"
            );
        }
    }
    format!(
        "`{text}` is not a valid China number: a mobile has 11 digits starting with a prefix in use (138, 159, 199, ...), a landline its area code (010, 021, 0755, ...) and then 7 or 8 digits; check for a digit too many or too few"
    )
}

/// A phone number for logs: enough to recognise, not enough to copy (138****8000).
pub fn mask(phone: &str) -> String {
    let n = phone.chars().count();
    if n <= 7 {
        return "*".repeat(n);
    }
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 3 || i >= n - 4 { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{china, is_plain_mobile, normalize, normalize_cell, plain_mobile_cell, read_cell};
    use proptest::prelude::*;

    const MOBILE: &str = "13800138000";
    const OTHER_MOBILE: &str = "13900139000";
    const BEIJING: &str = "01065529988";
    const SHANGHAI: &str = "02168881234";

    #[test]
    fn spellings_of_one_mobile_agree() {
        for raw in [
            "13800138000",
            "+86 138-0013-8000",
            "0086 13800138000",
            "138 0013 8000",
            " +8613800138000 ",
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok("13800138000"), "{raw}");
        }
    }

    #[test]
    fn landlines_keep_their_area_code() {
        assert_eq!(normalize("010-6552 9988").as_deref(), Ok("01065529988"));
        assert_eq!(normalize("(021) 6888 1234").as_deref(), Ok("02168881234"));
    }

    #[test]
    fn guesses_are_refused() {
        assert!(normalize("").is_err());
        assert!(
            normalize("1380013800").is_err(),
            "10 digits is not a mobile"
        );
        assert!(
            normalize("138001380001").is_err(),
            "12 digits is not a mobile"
        );
        assert!(
            normalize("1-800-FLOWERS").is_err(),
            "letters are never keypad digits"
        );
        assert!(normalize("+1 650 253 0000").unwrap_err().contains("+1"));
        assert!(normalize("12345").is_err());
    }

    #[test]
    fn what_people_type_in_excel_is_normalised() {
        let table: &[(&str, &str)] = &[
            // Full-width digits and punctuation, odd dashes and spaces.
            ("１３８００１３８０００", MOBILE),
            ("＋８６ １３８－００１３－８０００", MOBILE),
            ("１３８　００１３　８０００", MOBILE),
            ("（０１０）６５５２　９９８８", BEIJING),
            ("138—0013—8000", MOBILE),
            ("138–0013–8000", MOBILE),
            ("138\u{a0}0013\u{a0}8000", MOBILE),
            ("１３８．００１３．８０００", MOBILE),
            ("138.0013.8000", MOBILE),
            ("\t13800138000\n", MOBILE),
            // Excel's float rendering of a number column.
            ("13800138000.0", MOBILE),
            ("13800138000.00", MOBILE),
            ("１３８００１３８０００．０", MOBILE),
            ("8613800138000.0", MOBILE),
            // International prefixes.
            ("8613800138000", MOBILE),
            ("86 138 0013 8000", MOBILE),
            ("86-138-0013-8000", MOBILE),
            ("+86 138 0013 8000", MOBILE),
            ("(+86) 138 0013 8000", MOBILE),
            ("0086-138-0013-8000", MOBILE),
            ("+86 10 6552 9988", BEIJING),
            ("+86 010 6552 9988", BEIJING),
            ("+86 (0)10 6552 9988", BEIJING),
            ("0086 21 6888 1234", SHANGHAI),
            ("+86-21-68881234", SHANGHAI),
            // A landline is dialled with its trunk 0, whatever the area code.
            ("0571 8888 1234", "057188881234"),
            ("+86 571 8888 1234", "057188881234"),
            ("0755-8888 8888", "075588888888"),
            // Numbers without a trunk 0 stay without one.
            ("400-123-4567", "4001234567"),
            ("+86 400 123 4567", "4001234567"),
            // A note without digits around the number.
            ("138 0013 8000 (office)", MOBILE),
            ("13800138000 王先生", MOBILE),
            ("13800138000王先生", MOBILE),
            ("手机：13800138000", MOBILE),
            ("手机13800138000", MOBILE),
            ("tel: 13800138000", MOBILE),
            ("Tel. 138-0013-8000", MOBILE),
            ("13800138000（办公室）", MOBILE),
            ("王先生 (010) 6552-9988 办公室", BEIJING),
            ("13800138000;", MOBILE),
            ("13800138000 ext", MOBILE),
            ("13800138000 / 王先生", MOBILE),
            // What libphonenumber reads as a person means it.
            ("86-20-8040-9985", "02080409985"),
            ("861065529988", BEIJING),
            ("0138-0013-8000", MOBILE),
            ("013800138000", MOBILE),
            ("0400 123 4567", "4001234567"),
            ("1065529988", BEIJING),
            ("张三13800138000", MOBILE),
            ("李四 195-5091-9415", "19550919415"),
            ("13800138000一", MOBILE),
            ("010-96118", "01096118"),
            ("1096118", "01096118"),
            ("16107242769", "16107242769"),
            ("17951 13800138000", MOBILE),
            ("17951 1065529988", BEIJING),
            ("12593 13800138000", MOBILE),
        ];
        for (raw, want) in table {
            assert_eq!(normalize(raw).as_deref(), Ok(*want), "{raw}");
            assert_eq!(
                normalize_cell(raw, true),
                Ok(vec![want.to_string()]),
                "{raw}"
            );
        }
    }

    /// Each rejected cell, with words its reason must contain.
    #[test]
    fn what_is_not_clearly_one_number_is_refused_with_its_reason() {
        let table: &[(&str, &[&str])] = &[
            ("", &["empty"]),
            ("   ", &["empty"]),
            ("\u{3000}", &["empty"]),
            ("n/a", &["no phone number"]),
            ("王先生", &["no phone number"]),
            ("(   )", &["no phone number"]),
            // Scientific notation: cause and fix.
            (
                "1.38001E+10",
                &["`1.38001E+10`", "scientific notation", "Excel", "Text"],
            ),
            ("1.38E10", &["scientific notation"]),
            ("1.3800138E+10", &["scientific notation"]),
            ("1.38001e+10", &["scientific notation"]),
            ("1,38001E+10", &["scientific notation"]),
            ("１．３８００１Ｅ＋１０", &["scientific notation"]),
            (
                "13800138000 / 1.39001E+10",
                &["`1.39001E+10`", "scientific"],
            ),
            ("13,800,138,000", &["thousands separators", "Text"]),
            // Decimals other than Excel's `.0`.
            ("13800138000.5", &["decimal"]),
            ("13800138000.000", &["decimal"]),
            ("1380013.8000", &["decimal"]),
            ("010.65529988", &["decimal"]),
            ("010-6552 9988.0", &["`.0`", "decimal part"]),
            ("138 0013 8000.00", &["`.00`"]),
            // Letters or numerals in the digits.
            ("138-FLOWERS", &["`F`", "touching"]),
            ("1-800-FLOWERS", &["touching"]),
            ("1380013800O", &["`O`", "mistyped digit"]),
            ("13800138000O", &["`O`"]),
            ("138O0138000", &["`O`"]),
            ("l3800138000", &["`l`"]),
            ("Tel13800138000", &["`l`"]),
            ("138〇0138000", &["`〇`", "0-9"]),
            ("13800138000 ①", &["`①`"]),
            ("١٣٨٠٠١٣٨٠٠٠", &["0-9"]),
            // Extensions.
            (
                "13800138000 ext 12",
                &["extension", "`12`", "main number alone"],
            ),
            ("13800138000 ext. 12", &["extension"]),
            ("13800138000 (ext 12)", &["extension"]),
            ("13800138000 分机号：12", &["extension"]),
            ("13800138000 x12", &["extension"]),
            ("13800138000x12", &["extension"]),
            ("13800138000 X 12", &["extension"]),
            ("13800138000转12", &["extension"]),
            ("13800138000 转 12", &["extension"]),
            ("010-65529988 分机 123", &["extension", "`123`"]),
            ("010-65529988#123", &["extension"]),
            ("010-6552 9988-12", &["extension", "`12`"]),
            ("010 6552 9988 12", &["extension"]),
            ("13800138000-12", &["extension"]),
            ("13800138000 12", &["extension"]),
            // Digits beside the number.
            ("13800138000 王先生 2号楼", &["digits beside", "`2`"]),
            ("3号 13800138000", &["digits beside", "`3`"]),
            // Not mainland China.
            ("+1 650 253 0000", &["+1", "+86"]),
            ("+852 2123 4567", &["+852"]),
            ("00852 2123 4567", &["+852"]),
            ("+886 2 2345 6789", &["+886"]),
            // Invalid digits.
            ("91689702409", &["not a valid China number"]),
            ("0916 8970 2409", &["not a valid China number"]),
            ("010-65552-9988", &["not a valid China number", "too many"]),
            ("0756-72838738", &["not a valid China number"]),
            ("+86 0592 69457226", &["not a valid China number"]),
            ("15423183147", &["154 is not a mobile prefix in use"]),
            ("17412345678", &["1741 is not a mobile prefix in use"]),
            ("10193 13800138000", &["10193", "IP-dialling prefix"]),
            ("17951-010-65529988", &["17951", "IP-dialling prefix"]),
            ("8613800138000 0", &["extension"]),
            ("138+0013+8000", &["+ inside"]),
            ("13800138000-13900139000", &["not a valid China number"]),
            ("1380013800", &["not a valid China number"]),
            ("12345678901234567890123", &["not a valid China number"]),
            (&"13800138000 ".repeat(30), &["more than the 250"]),
        ];
        for (raw, words) in table {
            for split in [false, true] {
                let reason = normalize_cell(raw, split).unwrap_err();
                for word in *words {
                    assert!(reason.contains(word), "{raw:?}: {reason:?} lacks {word:?}");
                }
            }
        }
    }

    #[test]
    fn several_numbers_are_an_error_unless_split() {
        let both = vec![MOBILE.to_string(), OTHER_MOBILE.to_string()];
        for raw in [
            "13800138000/13900139000",
            "13800138000 / 13900139000",
            "13800138000;13900139000",
            "13800138000；13900139000",
            "13800138000,13900139000",
            "13800138000，13900139000",
            "13800138000、13900139000",
            "13800138000|13900139000",
            "13800138000 or 13900139000",
            "13800138000或13900139000",
            "13800138000 13900139000",
            "138-0013-8000 139-0013-9000",
            "138 0013 8000 139 0013 9000",
            "+86 138 0013 8000 +86 139 0013 9000",
            "13800138000\n13900139000",
            "王先生 13800138000 王太太 13900139000",
            "１３８００１３８０００／１３９００１３９０００",
        ] {
            let reason = normalize(raw).unwrap_err();
            assert_eq!(
                reason,
                "the cell holds several numbers (13800138000, 13900139000): put one number per row, or set `multi_phone: split` in the campaign",
                "{raw}"
            );
            assert_eq!(normalize_cell(raw, false), Err(reason), "{raw}");
            assert_eq!(normalize_cell(raw, true), Ok(both.clone()), "{raw}");
        }
    }

    #[test]
    fn split_keeps_order_and_drops_repeats() {
        assert_eq!(
            normalize_cell("010-6552 9988 / +86 138 0013 8000", true),
            Ok(vec![BEIJING.to_string(), MOBILE.to_string()])
        );
        assert_eq!(
            normalize_cell("13900139000;13800138000;139 0013 9000", true),
            Ok(vec![OTHER_MOBILE.to_string(), MOBILE.to_string()])
        );
        assert_eq!(
            normalize_cell("13800138000 / +86 138-0013-8000", true),
            Ok(vec![MOBILE.to_string()])
        );
        assert_eq!(
            normalize_cell("13800138000", true),
            Ok(vec![MOBILE.to_string()])
        );
        assert_eq!(
            normalize_cell("13800138000", false),
            Ok(vec![MOBILE.to_string()])
        );
        let repeated = normalize("13800138000/13800138000").unwrap_err();
        assert!(repeated.contains("more than once"), "{repeated}");
    }

    #[test]
    fn an_invalid_number_among_several_is_named() {
        for raw in [
            "13800138000/1390013900",
            "13800138000 1390013900",
            "13900139000 / 13800138000 1390013900",
        ] {
            for split in [false, true] {
                let reason = normalize_cell(raw, split).unwrap_err();
                assert!(reason.contains("`1390013900`"), "{raw}: {reason}");
                assert!(
                    reason.contains("not a valid China number"),
                    "{raw}: {reason}"
                );
            }
        }
        assert_eq!(
            normalize("13900139000 / 13800138000 1390013900").unwrap_err(),
            "the cell is read as several numbers (13900139000, 13800138000, 1390013900), and `1390013900` is not a valid China number: a mobile has 11 digits starting with a prefix in use (138, 159, 199, ...), a landline its area code (010, 021, 0755, ...) and then 7 or 8 digits; check for a digit too many or too few; put one number per row"
        );
        let reason = normalize_cell("13800138000 / +1 650 253 0000", true).unwrap_err();
        assert!(reason.contains("+1"), "{reason}");
    }

    /// True if the national number `n` is valid as dialled (the libphonenumber table holds
    /// this verdict to the reference).
    fn valid(n: &str) -> bool {
        let national = n.strip_prefix('0').unwrap_or(n);
        china::dial(national).as_deref() == Some(n)
    }

    /// A valid mobile (`true`) or landline (`false`) in national form.
    fn national_number() -> impl Strategy<Value = (String, bool)> {
        let mobile = (
            prop::sample::select(vec![
                "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
                "152", "153", "155", "156", "157", "158", "159", "180", "181", "182", "183", "184",
                "185", "186", "187", "188", "189",
            ]),
            prop::collection::vec(0u8..10, 8),
        )
            .prop_map(|(prefix, rest)| (format!("{prefix}{}", digits(&rest)), true));
        let landline = (
            prop::sample::select(vec![
                "010", "020", "021", "022", "023", "024", "025", "027", "028", "029", "0755",
                "0571", "0512", "0592", "0916", "0427", "0898",
            ]),
            2u8..9,
            prop::collection::vec(0u8..10, 7),
        )
            .prop_map(|(area, first, rest)| (format!("{area}{first}{}", digits(&rest)), false));
        prop_oneof![mobile, landline].prop_filter("valid", |(n, _)| valid(n))
    }

    fn digits(values: &[u8]) -> String {
        values.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// How a person may write the number `n`.
    #[derive(Debug, Clone)]
    struct Spelling {
        grouping: usize,
        prefix: usize,
        wide: Vec<bool>,
        excel_float: bool,
        noise: usize,
    }

    fn spelling() -> impl Strategy<Value = Spelling> {
        (
            0usize..5,
            0usize..6,
            prop::collection::vec(any::<bool>(), 40),
            any::<bool>(),
            0usize..5,
        )
            .prop_map(|(grouping, prefix, wide, excel_float, noise)| Spelling {
                grouping,
                prefix,
                wide,
                excel_float,
                noise,
            })
    }

    fn spell(n: &str, mobile: bool, s: &Spelling) -> String {
        let area_len = if mobile || n.starts_with("01") || n.starts_with("02") {
            3
        } else {
            4
        };
        let groups: Vec<&str> = if mobile {
            vec![&n[..3], &n[3..7], &n[7..]]
        } else {
            vec![
                &n[..area_len],
                &n[area_len..area_len + 4],
                &n[area_len + 4..],
            ]
        };
        // With an international prefix a landline may drop its trunk 0.
        let prefix = match s.prefix {
            1 => "+86 ",
            2 => "0086",
            3 if mobile => "86",
            4 => "+86",
            5 => "0086 ",
            _ => "",
        };
        let drop_trunk = !prefix.is_empty() && !mobile && s.wide[39];
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if drop_trunk {
            groups[0].remove(0);
        }
        let body = match s.grouping {
            1 => groups.join(" "),
            2 => groups.join("-"),
            3 => groups.join("."),
            4 if !mobile => format!("({}) {}{}", groups[0], groups[1], groups[2]),
            _ => groups.concat(),
        };
        let all_digits = prefix.chars().all(|c| c.is_ascii_digit());
        let mut text = format!("{prefix}{body}");
        if s.excel_float && s.grouping == 0 && all_digits {
            text.push_str(".0");
        }
        let text: String = text
            .chars()
            .zip(s.wide.iter().cycle())
            .map(|(c, &wide)| match c {
                '0'..='9' | '+' | '-' | '(' | ')' | '.' if wide => {
                    char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                }
                ' ' if wide => '\u{3000}',
                c => c,
            })
            .collect();
        match s.noise {
            1 => format!("{text} (office)"),
            2 => format!("{text} 王先生"),
            3 => format!("手机：{text}"),
            4 => format!("tel: {text}"),
            _ => text,
        }
    }

    /// `s` with full-width digits and dots folded to ASCII.
    fn folded(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '\u{FF10}'..='\u{FF19}' | '．' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                c => c,
            })
            .collect()
    }

    /// The digits of `s` are those of `n`, give or take an international prefix, a trunk 0 and
    /// an Excel `.0`.
    fn digits_accounted_for(s: &str, n: &str) -> bool {
        let text = folded(s);
        let d: String = text.chars().filter(char::is_ascii_digit).collect();
        ["", "86", "0086"].iter().any(|prefix| {
            ["", "0", "00"].iter().any(|float| {
                let Some(middle) = d
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(float))
                else {
                    return false;
                };
                let float_ok = float.is_empty() || text.contains(&format!(".{float}"));
                // libphonenumber's dialling form may add a landline's trunk 0, or drop the
                // one written before a mobile.
                let same = middle == n || format!("0{middle}") == n || middle == format!("0{n}");
                float_ok && same
            })
        })
    }

    /// Any cell: fragments of all kinds, or written numbers among fragments without digits.
    fn cell() -> impl Strategy<Value = String> {
        let noise =
            || prop::collection::vec(noise_fragment(), 0..3).prop_map(|parts| parts.concat());
        let written = || {
            prop_oneof![
                (national_number(), spelling()).prop_map(|((n, mobile), s)| spell(&n, mobile, &s)),
                fragment(),
            ]
        };
        prop_oneof![
            prop::collection::vec(fragment(), 0..6).prop_map(|parts| parts.concat()),
            (noise(), written(), noise()).prop_map(|(a, b, c)| format!("{a}{b}{c}")),
            (noise(), written(), noise(), written(), noise())
                .prop_map(|(a, b, c, d, e)| format!("{a}{b}{c}{d}{e}")),
        ]
    }

    /// A piece of a cell with digits in it.
    fn digit_fragment() -> BoxedStrategy<String> {
        prop_oneof![
            2 => prop::collection::vec(0u8..10, 1..12).prop_map(|d| digits(&d)),
            1 => prop::collection::vec(0u8..10, 1..12).prop_map(|d| {
                d.iter().map(|d| char::from_u32(0xFF10 + u32::from(*d)).unwrap_or('0')).collect()
            }),
            4 => prop::sample::select(vec![
                "13800138000", "138 0013 8000", "010-6552 9988", "１３９００１３９０００", "0916 8970 2409",
                "10 6552 9988", "400 123 4567", "+86", "+86 ", "0086", "86", ".0", ".00", "0", "〇", "①",
            ]).prop_map(String::from),
        ]
        .boxed()
    }

    /// A piece of a cell without digits: separators, letters, Chinese, notes.
    fn noise_fragment() -> BoxedStrategy<String> {
        prop::sample::select(vec![
            " ",
            "-",
            ".",
            "(",
            ")",
            "+",
            "/",
            ";",
            "，",
            "、",
            "|",
            "　",
            "．",
            "＋",
            "－",
            "（",
            "）",
            "a",
            "O",
            "l",
            "x",
            "ext",
            "E",
            "e",
            "王先生",
            "转",
            "手机：",
            "tel: ",
            "一",
            "#",
            " or ",
        ])
        .prop_map(String::from)
        .boxed()
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![digit_fragment(), noise_fragment()]
    }

    proptest! {
        // A failing case is printed with its input; no regression file at the top of the repo.
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn every_spelling_of_a_valid_number_normalises_to_it(
            (n, mobile) in national_number(),
            s in spelling(),
        ) {
            let raw = spell(&n, mobile, &s);
            prop_assert_eq!(normalize(&raw), Ok(n.clone()), "{}", raw);
            prop_assert_eq!(normalize(&n), Ok(n.clone()));
            prop_assert_eq!(normalize_cell(&raw, true), Ok(vec![n.clone()]));
        }

        /// A plain mobile-shaped number, which skips most of the reading, gets the answer
        /// the long way gives.
        #[test]
        fn the_mobile_fast_path_agrees_with_the_long_way(digits in "1[3-9][0-9]{9}") {
            prop_assert_eq!(is_plain_mobile(&digits), !digits.starts_with("179"));
            if let Some(fast) = plain_mobile_cell(&digits) {
                prop_assert_eq!(Ok(vec![fast]), read_cell(&digits, false));
            } else {
                prop_assert!(read_cell(&digits, false).is_err() || !is_plain_mobile(&digits));
            }
        }

        #[test]
        fn no_digit_is_ever_dropped_or_invented(
            raw in cell(),
        ) {
            if let Ok(n) = normalize(&raw) {
                prop_assert!(digits_accounted_for(&raw, &n), "{:?} => {}", raw, n);
                prop_assert_eq!(normalize(&n), Ok(n.clone()));
                prop_assert_eq!(normalize_cell(&raw, true), Ok(vec![n]));
            }
            if let Ok(numbers) = normalize_cell(&raw, true) {
                prop_assert!(!numbers.is_empty());
                for (i, n) in numbers.iter().enumerate() {
                    prop_assert_eq!(normalize(n), Ok(n.clone()));
                    prop_assert!(!numbers[..i].contains(n), "{:?} repeats {}", raw, n);
                }
            }
        }
    }
}
