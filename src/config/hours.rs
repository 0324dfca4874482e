//! Calling hours: when a call may be *started*, in the campaign's time zone.
//!
//! People may only be rung at decent hours, so the check is made before every call, not once
//! per run: a window that closes mid-run stops new calls at once (a call already started may
//! finish after it). The campaign file says `hours: always` to opt out; without a block the
//! default is 09:00–20:00 Asia/Shanghai, every day. Times are compared in the campaign's zone,
//! so daylight-saving zones and holidays (`skip_dates`) fall where a person expects.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

pub const DEFAULT_ZONE: &str = "Asia/Shanghai";

/// `hours:` exactly as written: the word `always`, or a block.
#[derive(Debug)]
pub enum RawHours {
    Always,
    Block(RawBlock),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlock {
    timezone: Option<String>,
    windows: Option<Vec<String>>,
    days: Option<Vec<String>>,
    #[serde(default)]
    skip_dates: Vec<String>,
}

impl<'de> Deserialize<'de> for RawHours {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<RawHours, D::Error> {
        struct HoursVisitor;
        impl<'de> Visitor<'de> for HoursVisitor {
            type Value = RawHours;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`always` or a block with timezone, windows, days and skip_dates")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHours, E> {
                if v.trim() == "always" {
                    Ok(RawHours::Always)
                } else {
                    Err(E::custom(format!(
                        "hours must be `always` or a block, not `{v}`"
                    )))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHours, A::Error> {
                RawBlock::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawHours::Block)
            }
        }
        deserializer.deserialize_any(HoursVisitor)
    }
}

/// Validated calling hours.
#[derive(Debug, Clone)]
pub struct Hours {
    /// None: always open.
    windows: Option<Windows>,
    zone: TimeZone,
    zone_name: String,
}

#[derive(Debug, Clone)]
struct Windows {
    spans: Vec<(Time, Time)>,
    days: [bool; 7],
    skip: BTreeSet<Date>,
}

impl Hours {
    pub fn from_raw(raw: Option<RawHours>) -> Result<Hours, String> {
        let block = match raw {
            Some(RawHours::Always) => {
                return Ok(Hours {
                    windows: None,
                    zone: zone(DEFAULT_ZONE)?,
                    zone_name: DEFAULT_ZONE.into(),
                });
            }
            Some(RawHours::Block(block)) => block,
            None => RawBlock::default(),
        };
        let zone_name = block.timezone.unwrap_or_else(|| DEFAULT_ZONE.to_string());
        let zone = zone(&zone_name)?;
        let spans = match block.windows {
            None => vec![(Time::constant(9, 0, 0, 0), Time::constant(20, 0, 0, 0))],
            Some(w) if w.is_empty() => {
                return Err("`hours.windows` is empty: nobody could ever be called".into());
            }
            Some(w) => w.iter().map(|s| window(s)).collect::<Result<_, _>>()?,
        };
        let days = match block.days {
            None => [true; 7],
            Some(names) => {
                let mut days = [false; 7];
                for name in &names {
                    days[weekday(name)?.to_monday_zero_offset() as usize] = true;
                }
                if !days.contains(&true) {
                    return Err("`hours.days` is empty: nobody could ever be called".into());
                }
                days
            }
        };
        let skip = block
            .skip_dates
            .iter()
            .map(|d| {
                d.trim()
                    .parse::<Date>()
                    .map_err(|_| format!("`{d}` in hours.skip_dates is not a date like 2026-10-01"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Hours {
            windows: Some(Windows { spans, days, skip }),
            zone,
            zone_name,
        })
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// Whether a call may be started at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let Some(w) = &self.windows else { return true };
        let local = at.to_zoned(self.zone.clone());
        let (date, time) = (local.date(), local.time());
        w.days[date.weekday().to_monday_zero_offset() as usize]
            && !w.skip.contains(&date)
            && w.spans
                .iter()
                .any(|(start, end)| *start <= time && time < *end)
    }

    /// The first instant at or after `at` when calls may start (None: never within a year).
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        let w = self.windows.as_ref()?;
        let local = at.to_zoned(self.zone.clone());
        let mut date = local.date();
        for _ in 0..400 {
            let usable =
                w.days[date.weekday().to_monday_zero_offset() as usize] && !w.skip.contains(&date);
            if usable {
                let mut starts: Vec<Time> = w.spans.iter().map(|(s, _)| *s).collect();
                starts.sort();
                for start in starts {
                    let candidate = date
                        .to_datetime(start)
                        .to_zoned(self.zone.clone())
                        .ok()?
                        .timestamp();
                    if candidate > at && self.is_open(candidate) {
                        return Some(candidate);
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// `at` as the campaign's people read it.
    pub fn local(&self, at: Timestamp) -> Zoned {
        at.to_zoned(self.zone.clone())
    }

    /// The calendar day around `at` in the campaign's zone, as Unix seconds `[start, end)`:
    /// the day `limits.daily_max` counts.
    pub fn day_bounds(&self, at: Timestamp) -> (i64, i64) {
        let local = self.local(at);
        let start = local.start_of_day().map(|z| z.timestamp()).unwrap_or(at);
        let end = local
            .date()
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(self.zone.clone()).ok())
            .map(|z| z.timestamp())
            .unwrap_or(at);
        (start.as_second(), end.as_second())
    }
}

fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name)
        .map_err(|_| format!("`{name}` is not a time zone: use an IANA name such as Asia/Shanghai"))
}

fn window(text: &str) -> Result<(Time, Time), String> {
    let bad = || format!("`{text}` in hours.windows is not a window like 09:00-12:00");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let parse = |t: &str| Time::strptime("%H:%M", t.trim()).map_err(|_| bad());
    let (start, end) = (parse(start)?, parse(end)?);
    if start >= end {
        return Err(format!(
            "`{text}` in hours.windows ends before it starts: split a window across midnight in two"
        ));
    }
    Ok((start, end))
}

fn weekday(name: &str) -> Result<Weekday, String> {
    Ok(match name.trim().to_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => {
            return Err(format!(
                "`{name}` in hours.days is not a day: use mon, tue, wed, thu, fri, sat, sun"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(yaml: &str) -> Hours {
        Hours::from_raw(Some(serde_norway::from_str(yaml).unwrap())).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse::<Zoned>().unwrap().timestamp()
    }

    #[test]
    fn windows_days_and_holidays() {
        let h = hours(
            "timezone: Asia/Shanghai\nwindows: [\"09:00-12:00\", \"14:00-20:30\"]\ndays: [mon, tue, wed, thu, fri, sat]\nskip_dates: [2026-10-01]\n",
        );
        assert!(h.is_open(at("2026-12-01T09:00:00+08:00[Asia/Shanghai]")));
        assert!(
            !h.is_open(at("2026-12-01T12:00:00+08:00[Asia/Shanghai]")),
            "a window's end is closed"
        );
        assert!(h.is_open(at("2026-12-01T20:29:59+08:00[Asia/Shanghai]")));
        assert!(
            !h.is_open(at("2026-12-06T10:00:00+08:00[Asia/Shanghai]")),
            "Sunday"
        );
        assert!(
            !h.is_open(at("2026-10-01T10:00:00+08:00[Asia/Shanghai]")),
            "a holiday"
        );
        assert_eq!(
            h.next_open(at("2026-12-01T12:30:00+08:00[Asia/Shanghai]")),
            Some(at("2026-12-01T14:00:00+08:00[Asia/Shanghai]"))
        );
        assert_eq!(
            h.next_open(at("2026-12-05T21:00:00+08:00[Asia/Shanghai]")),
            Some(at("2026-12-07T09:00:00+08:00[Asia/Shanghai]")),
            "Saturday night waits for Monday"
        );
    }

    #[test]
    fn defaults_and_always() {
        let default = Hours::from_raw(None).unwrap();
        assert!(default.is_open(at("2026-12-06T19:59:00+08:00[Asia/Shanghai]")));
        assert!(!default.is_open(at("2026-12-06T20:00:00+08:00[Asia/Shanghai]")));
        assert!(!default.is_open(at("2026-12-06T03:00:00+08:00[Asia/Shanghai]")));
        assert!(hours("always").is_open(at("2026-12-06T03:00:00+08:00[Asia/Shanghai]")));
        assert!(
            Hours::from_raw(Some(
                serde_norway::from_str("windows: [\"20:00-08:00\"]").unwrap()
            ))
            .is_err()
        );
        assert!(
            Hours::from_raw(Some(
                serde_norway::from_str("timezone: Mars/Olympus").unwrap()
            ))
            .is_err()
        );
    }
}
