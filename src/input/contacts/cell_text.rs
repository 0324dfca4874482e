//! A workbook cell as the sheet shows it: the text a person sees in Excel, WPS or LibreOffice,
//! not the number stored behind it.
//!
//! A date is stored as a day count (46359), a time as a fraction of a day (0.375), a percentage
//! as a fraction (0.15), and a landline formatted `00000000000` as the number 1065529988; read
//! raw, a reminder says "appointment on 46359 at 0.375". So each value is rendered with its
//! cell's number format where the workbook gives one (.xlsx), and in the form the sheet shows
//! by default otherwise (.xls, .ods): dates `2026-12-03`, times `09:30`, date-times
//! `2026-12-06 10:00`, numbers without float noise. Used by `contacts` only.

use calamine::Data;

/// A cell's number format, read once per style of the workbook.
#[derive(Debug, Default)]
pub struct NumberFormat(Format);

impl NumberFormat {
    pub fn parse(code: &str) -> NumberFormat {
        NumberFormat(Format::parse(code))
    }
}

/// The text of `value`, whose cell has the number format `format` (`None`: unknown).
pub fn shown(value: &Data, format: Option<&NumberFormat>) -> String {
    let format = format.map(|f| &f.0);
    match value {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Data::Int(i) => number(*i as f64, format),
        Data::Float(f) => number(*f, format),
        Data::DateTime(dt) => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            let s = if ms >= 500 { s + 1 } else { s };
            if dt.is_duration() {
                let total_hours = (dt.as_f64() * 24.0).floor() as u64;
                return format!("{total_hours}:{mi:02}");
            }
            let moment = Moment {
                date: (y, mo, d),
                time: (h, mi, s.min(59)),
            };
            match format {
                Some(f) if f.literal_date || f.has_time && !f.has_date => f.render(&moment),
                Some(f) => moment.iso(f.has_date, f.has_time, f.has_seconds),
                None => moment.iso(true, (h, mi, s) != (0, 0, 0), s != 0),
            }
        }
        Data::DateTimeIso(iso) => iso_date_time(iso),
        Data::DurationIso(iso) => iso_duration(iso),
        Data::Error(e) => e.to_string(),
    }
}

/// A number as the sheet shows it: with its format's decimals, percent sign, zero padding or
/// thousands separators; in the General format, at most 15 significant digits, so that
/// 0.1 + 0.2 is `0.3` and 13800138000 is `13800138000`.
fn number(value: f64, format: Option<&Format>) -> String {
    let Some(f) = format.filter(|f| !f.general) else {
        return general(value);
    };
    if f.percent {
        return format!("{:.*}%", f.decimals, value * 100.0);
    }
    let text = format!("{:.*}", f.decimals, value);
    let (integer, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = match integer.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", integer),
    };
    let digits = if f.thousands {
        group_thousands(digits)
    } else if digits.len() < f.min_integer_digits {
        format!("{digits:0>width$}", width = f.min_integer_digits)
    } else {
        digits.to_string()
    };
    if fraction.is_empty() {
        format!("{sign}{digits}")
    } else {
        format!("{sign}{digits}.{fraction}")
    }
}

fn general(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    // Fifteen significant digits, as spreadsheets keep: float noise sits past them.
    let rounded: f64 = format!("{value:.14e}").parse().unwrap_or(value);
    format!("{rounded}")
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The most decimals or zero-padded digits a format may ask for: no spreadsheet shows more
/// than 30, and a format code from a file is not trusted to size a cell.
const MAX_DIGITS: usize = 30;

/// What a number format code says about how a value is shown.
#[derive(Debug, Default)]
struct Format {
    general: bool,
    percent: bool,
    thousands: bool,
    decimals: usize,
    /// `00000000000` shows 1065529988 as `01065529988`.
    min_integer_digits: usize,
    has_date: bool,
    has_time: bool,
    has_seconds: bool,
    /// The format spells the date with text of its own (`m"月"d"日"`): render it as written.
    literal_date: bool,
    /// The first section's tokens, for rendering a date with literals.
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Year(usize),
    Month(usize),
    Day(usize),
    Hour(usize),
    Minute(usize),
    Second(usize),
    /// `AM/PM`: a 12-hour clock, and which half of the day.
    AmPm,
}

impl Format {
    fn parse(code: &str) -> Format {
        let mut f = Format::default();
        if code.trim().is_empty() || code.eq_ignore_ascii_case("general") || code == "@" {
            f.general = true;
            return f;
        }
        let mut chars = code.chars().peekable();
        let mut after_point = false;
        let mut raw: Vec<Token> = Vec::new();
        while let Some(c) = chars.next() {
            match c {
                ';' => break,
                '"' => {
                    let mut text = String::new();
                    for c in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        text.push(c);
                    }
                    raw.push(Token::Literal(text));
                }
                '\\' => {
                    if let Some(c) = chars.next() {
                        raw.push(Token::Literal(c.to_string()));
                    }
                }
                'A' | 'a'
                    if chars
                        .clone()
                        .take(4)
                        .collect::<String>()
                        .eq_ignore_ascii_case("M/PM") =>
                {
                    chars.nth(3);
                    raw.push(Token::AmPm);
                }
                '_' | '*' => {
                    chars.next();
                }
                '[' => {
                    // `[$-804]`, `[Red]`, `[DBNum1]`: locale and colour, not shown.
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                    }
                }
                '%' => f.percent = true,
                ',' if !after_point => f.thousands = true,
                '.' => after_point = true,
                '0' | '#' | '?' => {
                    if after_point {
                        f.decimals += 1;
                    } else if c == '0' {
                        f.min_integer_digits += 1;
                    }
                }
                'y' | 'Y' | 'm' | 'M' | 'd' | 'D' | 'h' | 'H' | 's' | 'S' => {
                    let mut n = 1;
                    while chars.peek().is_some_and(|p| p.eq_ignore_ascii_case(&c)) {
                        chars.next();
                        n += 1;
                    }
                    raw.push(match c.to_ascii_lowercase() {
                        'y' => Token::Year(n),
                        'm' => Token::Month(n),
                        'd' => Token::Day(n),
                        'h' => Token::Hour(n),
                        _ => Token::Second(n),
                    });
                }
                c if c.is_alphabetic() && !c.is_ascii() => raw.push(Token::Literal(c.to_string())),
                c => raw.push(Token::Literal(c.to_string())),
            }
        }
        // `m` after an hour or before a second is minutes, as Excel reads it.
        for i in 0..raw.len() {
            if let Token::Month(n) = raw[i] {
                let prev = raw[..i]
                    .iter()
                    .rev()
                    .find(|t| !matches!(t, Token::Literal(_)));
                let next = raw[i + 1..]
                    .iter()
                    .find(|t| !matches!(t, Token::Literal(_)));
                if matches!(prev, Some(Token::Hour(_))) || matches!(next, Some(Token::Second(_))) {
                    raw[i] = Token::Minute(n);
                }
            }
        }
        for t in &raw {
            match t {
                Token::Year(_) | Token::Month(_) | Token::Day(_) => f.has_date = true,
                Token::Hour(_) | Token::Minute(_) => f.has_time = true,
                Token::Second(_) => {
                    f.has_time = true;
                    f.has_seconds = true;
                }
                Token::Literal(text) => {
                    if !text.is_ascii() {
                        f.literal_date = true;
                    }
                }
                Token::AmPm => f.has_time = true,
            }
        }
        f.literal_date &= f.has_date || f.has_time;
        f.decimals = f.decimals.min(MAX_DIGITS);
        f.min_integer_digits = f.min_integer_digits.min(MAX_DIGITS);
        // A date format's text is a handful of tokens; a longer one is not rendered as written.
        raw.truncate(64);
        f.tokens = raw;
        f
    }

    fn render(&self, m: &Moment) -> String {
        let (y, mo, d) = m.date;
        let (h, mi, s) = m.time;
        let twelve = self.tokens.contains(&Token::AmPm);
        let hour = if twelve { (h + 11) % 12 + 1 } else { h };
        let pad = |value: u64, n: usize| {
            if n >= 2 {
                format!("{value:02}")
            } else {
                value.to_string()
            }
        };
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Literal(text) => text.clone(),
                Token::Year(n) if *n <= 2 => format!("{:02}", y % 100),
                Token::Year(_) => y.to_string(),
                Token::Month(n) => pad(mo.into(), *n),
                Token::Day(n) => pad(d.into(), *n),
                Token::Hour(n) => pad(hour.into(), *n),
                Token::AmPm => if h < 12 { "AM" } else { "PM" }.to_string(),
                Token::Minute(n) => pad(mi.into(), *n),
                Token::Second(n) => pad(s.into(), *n),
            })
            .collect()
    }
}

struct Moment {
    date: (u16, u8, u8),
    time: (u8, u8, u8),
}

impl Moment {
    fn iso(&self, date: bool, time: bool, seconds: bool) -> String {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        let day = format!("{y:04}-{mo:02}-{d:02}");
        let clock = if seconds {
            format!("{h:02}:{mi:02}:{s:02}")
        } else {
            format!("{h:02}:{mi:02}")
        };
        match (date, time) {
            (true, true) => format!("{day} {clock}"),
            (false, true) => clock,
            _ => day,
        }
    }
}

/// OpenDocument's `2026-12-06T10:00:00` as `2026-12-06 10:00`, a date alone as it is.
fn iso_date_time(iso: &str) -> String {
    let Some((date, time)) = iso.split_once('T') else {
        return iso.to_string();
    };
    let time = time.split('.').next().unwrap_or(time);
    let time = time
        .strip_suffix(":00")
        .filter(|t| t.len() == 5)
        .unwrap_or(time);
    if time == "00:00" {
        date.to_string()
    } else {
        format!("{date} {time}")
    }
}

/// OpenDocument's `PT09H30M00S` as `09:30` (with seconds when there are some).
fn iso_duration(iso: &str) -> String {
    let Some(rest) = iso.strip_prefix("PT") else {
        return iso.to_string();
    };
    let mut parts = [0u64; 3];
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'H' | 'M' | 'S' => {
                let i = match c {
                    'H' => 0,
                    'M' => 1,
                    _ => 2,
                };
                parts[i] = number.parse().unwrap_or(0);
                number.clear();
            }
            // Fractions of a second are not shown.
            '.' => number.clear(),
            _ => return iso.to_string(),
        }
    }
    let [h, m, s] = parts;
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::{NumberFormat, shown};
    use calamine::{Data, ExcelDateTime, ExcelDateTimeType};

    fn date(serial: f64) -> Data {
        Data::DateTime(ExcelDateTime::new(
            serial,
            ExcelDateTimeType::DateTime,
            false,
        ))
    }

    #[test]
    fn cells_read_as_the_sheet_shows_them() {
        let cases: &[(Data, Option<&str>, &str)] = &[
            (date(46359.0), Some("yyyy-mm-dd"), "2026-12-03"),
            (date(46359.0), Some(r#"m"月"d"日""#), "12月3日"),
            (
                date(46359.0),
                Some("[$-804]yyyy\"年\"m\"月\"d\"日\""),
                "2026年12月3日",
            ),
            (date(0.395833333333333), Some("hh:mm"), "09:30"),
            (date(0.395833333333333), Some("h:mm"), "9:30"),
            (date(0.5625), Some("h:mm AM/PM"), "1:30 PM"),
            (date(0.5625), Some("[$-F400]h:mm:ss\\ AM/PM"), "1:30:00 PM"),
            (
                date(46362.416666666664),
                Some("yyyy-mm-dd hh:mm"),
                "2026-12-06 10:00",
            ),
            (date(46359.0), Some("mm-dd-yy"), "2026-12-03"),
            (Data::Float(0.15), Some("0%"), "15%"),
            (Data::Float(0.125), Some("0.0%"), "12.5%"),
            (Data::Float(0.1 + 0.2), Some("General"), "0.3"),
            (Data::Float(0.1 + 0.2), None, "0.3"),
            (Data::Float(1234.5), None, "1234.5"),
            (Data::Float(13800138000.0), None, "13800138000"),
            (
                Data::Float(1065529988.0),
                Some("00000000000"),
                "01065529988",
            ),
            (Data::Float(1234567.0), Some("#,##0"), "1,234,567"),
            (Data::Float(1.23456), Some("0.00"), "1.23"),
            (Data::Bool(true), None, "TRUE"),
            (Data::DateTimeIso("2026-12-03".into()), None, "2026-12-03"),
            (
                Data::DateTimeIso("2026-12-06T10:00:00".into()),
                None,
                "2026-12-06 10:00",
            ),
            (Data::DurationIso("PT09H30M00S".into()), None, "09:30"),
            (Data::String("007".into()), Some("@"), "007"),
        ];
        for (value, format, want) in cases {
            let format = format.map(NumberFormat::parse);
            assert_eq!(shown(value, format.as_ref()), *want, "{value:?} {format:?}");
        }
    }
}
