//! libphonenumber's reading of a string of digits as a number dialled from mainland China,
//! step for step as `phonenumbers.parse(…, "CN")`, `is_valid_number` and
//! `format_number_for_mobile_dialing(…, "CN", False)` do it, on the data in [`super::metadata`].
//!
//! Only the digits reach this module (and whether a `+` came first): reading text, notes and
//! extensions is [`super`]'s job. Every pattern is matched against the whole number; the one
//! Rust port matched from the start only (whisperfish/rust-phonenumber#31), so that a landline
//! with one digit too many passed as valid. The committed libphonenumber table
//! (`tests/fixtures/phones/`) holds this module to the reference.

use super::metadata::{self as meta, Desc};
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, PatternID, PatternSet};

/// libphonenumber's number types that China has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Unknown,
}

/// What libphonenumber read from the digits.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub country_code: u16,
    /// The national significant number (without a trunk prefix or carrier code).
    pub national: String,
    /// A carrier or IP-dialling code that was stripped (`17951`).
    pub carrier: Option<String>,
}

/// Why libphonenumber could not read the digits as a number at all.
#[derive(Debug, PartialEq, Eq)]
pub enum NotANumber {
    TooShort,
    TooLong,
    UnknownCountryCode,
}

/// `phonenumbers.parse`, from its country-code step on, for digits already normalised.
pub fn parse(plus: bool, digits: &str) -> Result<Parsed, NotANumber> {
    let (country_code, national) = match extract_country_code(plus, digits) {
        Err(NotANumber::UnknownCountryCode) if plus => match extract_country_code(false, digits)? {
            (0, _) => return Err(NotANumber::UnknownCountryCode),
            found => found,
        },
        other => other?,
    };
    let mut national = if country_code == 0 {
        digits.to_string()
    } else {
        national
    };
    let country_code = if country_code == 0 { 86 } else { country_code };
    if national.len() < 2 {
        return Err(NotANumber::TooShort);
    }
    let mut carrier = None;
    if country_code == 86 {
        let (code, stripped) = strip_national_prefix(&national);
        if !matches!(
            test_length(stripped),
            Length::TooShort | Length::LocalOnly | Length::Invalid
        ) {
            carrier = code.map(str::to_string);
            national = stripped.to_string();
        }
    }
    if national.len() > 17 {
        return Err(NotANumber::TooLong);
    }
    Ok(Parsed {
        country_code,
        national,
        carrier,
    })
}

/// `_maybe_extract_country_code`: the country code (0: none written) and the rest.
fn extract_country_code(plus: bool, digits: &str) -> Result<(u16, String), NotANumber> {
    let after_idd = if plus {
        Some(digits)
    } else {
        match patterns().prefix(Prefix::International, digits) {
            // Country codes never start with 0, so `00` followed by `0` is not a prefix.
            Some(end) if !digits[end..].starts_with('0') => Some(&digits[end..]),
            _ => None,
        }
    };
    if let Some(full) = after_idd {
        if full.len() <= 2 {
            return Err(NotANumber::TooShort);
        }
        return match country_code(full) {
            Some(code) => Ok((code.0, full[code.1..].to_string())),
            None => Err(NotANumber::UnknownCountryCode),
        };
    }
    if let Some(rest) = digits.strip_prefix("86") {
        let (_, potential) = strip_national_prefix(rest);
        let better = !general_match(digits) && general_match(potential);
        if better || test_length(digits) == Length::TooLong {
            return Ok((86, potential.to_string()));
        }
    }
    Ok((0, String::new()))
}

/// The known country calling code at the start of `digits`, and its length.
fn country_code(digits: &str) -> Option<(u16, usize)> {
    if digits.starts_with('0') {
        return None;
    }
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        meta::COUNTRY_CODES
            .binary_search(&code)
            .ok()
            .map(|_| (code, len))
    })
}

/// `_maybe_strip_national_prefix_carrier_code`: the carrier code stripped, and the rest.
fn strip_national_prefix(number: &str) -> (Option<&str>, &str) {
    let Some(end) = patterns().prefix(Prefix::National, number) else {
        return (None, number);
    };
    let rest = &number[end..];
    if general_match(number) && !general_match(rest) {
        return (None, number);
    }
    // The pattern is `(carrier)|0`: a match longer than the `0` is a carrier code.
    let carrier = (end > 1).then(|| &number[..end]);
    (carrier, rest)
}

#[derive(Debug, PartialEq, Eq)]
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// `_test_number_length` against China's general lengths.
fn test_length(number: &str) -> Length {
    const LOCAL_ONLY: [usize; 2] = [5, 6];
    let lengths = meta::GENERAL.lengths;
    let len = number.len();
    if LOCAL_ONLY.contains(&len) {
        Length::LocalOnly
    } else if len < lengths[0] {
        Length::TooShort
    } else if len > lengths[lengths.len() - 1] {
        Length::TooLong
    } else if lengths.contains(&len) {
        Length::Possible
    } else {
        Length::Invalid
    }
}

/// `_match_national_number` on the general pattern: the pattern alone, lengths aside.
fn general_match(number: &str) -> bool {
    let p = patterns();
    p.with_matches(number, |matched| matched.contains(p.general))
}

/// The digits dialled for the national significant number `national`, if it is valid: what
/// [`kind`] and [`dialling_form`] say together, from one pass of the patterns.
pub fn dial(national: &str) -> Option<String> {
    patterns().with_matches(national, |matched| {
        (kind_in(matched, national) != Kind::Unknown).then(|| form_in(matched, national))
    })
}

/// `number_type` for a China national significant number.
pub fn kind(national: &str) -> Kind {
    patterns().with_matches(national, |matched| kind_in(matched, national))
}

fn kind_in(matched: &PatternSet, national: &str) -> Kind {
    let p = patterns();
    let is = |(index, desc): (PatternID, &Desc)| {
        matched.contains(index) && desc.lengths.contains(&national.len())
    };
    if !is((p.general, &meta::GENERAL)) {
        return Kind::Unknown;
    }
    if let Some((kind, _, _)) = p.special.iter().find(|(_, i, d)| is((*i, d))) {
        return *kind;
    }
    let mobile = is((p.mobile, &meta::MOBILE));
    match (is((p.fixed_line, &meta::FIXED_LINE)), mobile) {
        (true, true) => Kind::FixedLineOrMobile,
        (true, false) => Kind::FixedLine,
        (false, true) => Kind::Mobile,
        (false, false) => Kind::Unknown,
    }
}

/// The digits libphonenumber dials for a valid China number from within China: its national
/// format, which puts the trunk `0` in front where that format's rule says so.
fn form_in(matched: &PatternSet, national: &str) -> String {
    let p = patterns();
    let format = p.formats.iter().find(|(leading, whole)| {
        leading.is_none_or(|leading| matched.contains(leading)) && matched.contains(*whole)
    });
    let trunk = format.is_some_and(|(_, whole)| p.trunk[whole.as_usize()]);
    if trunk {
        format!("0{national}")
    } else {
        national.to_string()
    }
}

/// Every pattern of the metadata in one set, matched in one pass over a number.
struct Patterns {
    set: Regex,
    general: PatternID,
    special: Vec<(Kind, PatternID, &'static Desc)>,
    fixed_line: PatternID,
    mobile: PatternID,
    /// Each format's leading-digits pattern (matched at the start) and whole pattern.
    formats: Vec<(Option<PatternID>, PatternID)>,
    /// Indexed by a format's whole pattern: whether it dials the trunk `0`.
    trunk: Vec<bool>,
    international: Regex,
    national: Regex,
}

#[derive(Clone, Copy)]
enum Prefix {
    International,
    National,
}

impl Patterns {
    /// `f` of the set of patterns that match `number`.
    fn with_matches<T>(&self, number: &str, f: impl FnOnce(&PatternSet) -> T) -> T {
        thread_local! {
            // Reused: allocating a set per number cost a twentieth of judging a row.
            static FOUND: std::cell::RefCell<Option<PatternSet>> = const { std::cell::RefCell::new(None) };
        }
        FOUND.with_borrow_mut(|found| {
            let found = found.get_or_insert_with(|| PatternSet::new(self.set.pattern_len()));
            found.clear();
            self.set
                .which_overlapping_matches(&Input::new(number), found);
            f(found)
        })
    }

    /// Where a match of the prefix pattern that starts at the first digit ends.
    fn prefix(&self, which: Prefix, number: &str) -> Option<usize> {
        let regex = match which {
            Prefix::International => &self.international,
            Prefix::National => &self.national,
        };
        regex
            .find(Input::new(number).anchored(Anchored::Yes))
            .map(|m| m.end())
    }
}

fn patterns() -> &'static Patterns {
    static PATTERNS: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| {
        let mut sources: Vec<String> = Vec::new();
        let mut add = |source: String| {
            sources.push(source);
            PatternID::must(sources.len() - 1)
        };
        let whole = |pattern: &str| format!("^(?:{pattern})$");
        let general = add(whole(meta::GENERAL.pattern));
        let special = meta::SPECIAL
            .iter()
            .map(|&(kind, desc)| (kind, add(whole(desc.pattern)), desc))
            .collect();
        let fixed_line = add(whole(meta::FIXED_LINE.pattern));
        let mobile = add(whole(meta::MOBILE.pattern));
        let mut formats = Vec::new();
        for format in meta::FORMATS {
            let leading = format.leading_digits.map(|l| add(format!("^(?:{l})")));
            formats.push((leading, add(whole(format.pattern))));
        }
        let mut trunk = vec![false; sources.len()];
        for (format, (_, whole)) in meta::FORMATS.iter().zip(&formats) {
            trunk[whole.as_usize()] = format.trunk_prefix;
        }
        let syntax = || regex_automata::util::syntax::Config::new().unicode(false);
        let set = Regex::builder()
            .configure(
                Regex::config()
                    .nfa_size_limit(Some(20 << 20))
                    .hybrid_cache_capacity(4 << 20)
                    .match_kind(regex_automata::MatchKind::All)
                    .which_captures(regex_automata::nfa::thompson::WhichCaptures::None),
            )
            .syntax(syntax())
            .build_many(&sources)
            .expect("libphonenumber's patterns compile");
        let prefix = |pattern: &str| {
            Regex::builder()
                .syntax(syntax())
                .build(pattern)
                .expect("libphonenumber's prefix patterns compile")
        };
        Patterns {
            set,
            general,
            special,
            fixed_line,
            mobile,
            formats,
            trunk,
            international: prefix(meta::INTERNATIONAL_PREFIX),
            national: prefix(meta::NATIONAL_PREFIX_FOR_PARSING),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{Parsed, dial, parse};

    fn read(plus: bool, digits: &str) -> Option<String> {
        let parsed = parse(plus, digits).ok()?;
        if parsed.country_code != 86 {
            return None;
        }
        dial(&parsed.national)
    }

    /// Verdicts printed by `phonenumbers` 9.0.43 for these exact inputs.
    #[test]
    fn answers_as_libphonenumber_does() {
        let table: &[(bool, &str, Option<&str>)] = &[
            (false, "13800138000", Some("13800138000")),
            (false, "01065529988", Some("01065529988")),
            (false, "01096118", Some("01096118")),
            (false, "1096118", Some("01096118")),
            (false, "4001234567", Some("4001234567")),
            (false, "091689702409", None),
            (false, "16107242769", Some("16107242769")),
            (false, "15423183147", None),
            (false, "1795113800138000", Some("13800138000")),
            (false, "1019313800138000", None),
            (false, "862080409985", Some("02080409985")),
            (false, "013800138000", Some("13800138000")),
            (false, "010655529988", None),
            (false, "075672838738", None),
            (true, "86059269457226", None),
            (false, "02112345", Some("02112345")),
            (false, "95588", None),
            (true, "85221234567", None),
        ];
        for &(plus, digits, want) in table {
            assert_eq!(read(plus, digits).as_deref(), want, "{plus} {digits}");
        }
        assert_eq!(
            parse(false, "1795113800138000"),
            Ok(Parsed {
                country_code: 86,
                national: "13800138000".into(),
                carrier: Some("17951".into()),
            })
        );
        assert_eq!(parse(true, "85221234567").unwrap().country_code, 852);
    }
}
