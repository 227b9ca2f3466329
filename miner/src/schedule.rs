//! Availability windows: the days and hours, in the miner's own time zone,
//! when its machine is offered (e.g. nights and weekends).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Why a window description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("unknown day {0:?}: use mon..sun, weekdays, weekends or daily")]
    UnknownDay(String),
    #[error("a window needs at least one day")]
    NoDays,
    #[error("time {0:?} is not HH:MM (00:00-23:59, or 24:00 as an end)")]
    BadTime(String),
    #[error("unknown time zone {0:?} (use an IANA name such as Europe/Berlin or UTC)")]
    BadTimeZone(String),
    #[error("a window from {0} to {0} is empty")]
    Empty(String),
}

/// One recurring window. `from > to` wraps past midnight (the window opened on
/// a listed day ends on the next day).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    days: [bool; 7],
    from: NaiveTime,
    /// `None` means the end of the day (24:00).
    to: Option<NaiveTime>,
    tz: Tz,
}

fn parse_time(s: &str) -> Result<NaiveTime, WindowError> {
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| WindowError::BadTime(s.to_owned()))
}

impl Window {
    /// Builds a window from its configuration words.
    pub fn new(days: &[String], from: &str, to: &str, timezone: &str) -> Result<Self, WindowError> {
        let mut set = [false; 7];
        for day in days {
            let idx: &[usize] = match day.to_ascii_lowercase().as_str() {
                "mon" | "monday" => &[0],
                "tue" | "tuesday" => &[1],
                "wed" | "wednesday" => &[2],
                "thu" | "thursday" => &[3],
                "fri" | "friday" => &[4],
                "sat" | "saturday" => &[5],
                "sun" | "sunday" => &[6],
                "weekdays" => &[0, 1, 2, 3, 4],
                "weekends" => &[5, 6],
                "daily" => &[0, 1, 2, 3, 4, 5, 6],
                _ => return Err(WindowError::UnknownDay(day.clone())),
            };
            for &i in idx {
                set[i] = true;
            }
        }
        if !set.contains(&true) {
            return Err(WindowError::NoDays);
        }
        let from = parse_time(from)?;
        let to = if to == "24:00" {
            None
        } else {
            Some(parse_time(to)?)
        };
        if to == Some(from) {
            return Err(WindowError::Empty(from.format("%H:%M").to_string()));
        }
        let tz =
            Tz::from_str(timezone).map_err(|_| WindowError::BadTimeZone(timezone.to_owned()))?;
        Ok(Self {
            days: set,
            from,
            to,
            tz,
        })
    }

    fn day_listed(&self, day: Weekday) -> bool {
        self.days[day.num_days_from_monday() as usize]
    }

    fn wraps(&self) -> bool {
        self.to.is_some_and(|to| to < self.from)
    }

    /// Whether `at` falls inside the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.current_end(at).is_some()
    }

    /// If `at` is inside the window, when the window closes.
    pub fn current_end(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.tz);
        let time = local.time();
        let today = local.date_naive();
        let end_on = |date: chrono::NaiveDate| -> Option<DateTime<Utc>> {
            let naive = match self.to {
                Some(to) => date.and_time(to),
                None => date
                    .checked_add_days(Days::new(1))?
                    .and_time(NaiveTime::MIN),
            };
            Some(
                self.tz
                    .from_local_datetime(&naive)
                    .earliest()?
                    .with_timezone(&Utc),
            )
        };
        if self.wraps() {
            let to = self.to?;
            if self.day_listed(local.weekday()) && time >= self.from {
                return end_on(today.checked_add_days(Days::new(1))?);
            }
            let yesterday = local.weekday().pred();
            if self.day_listed(yesterday) && time < to {
                return end_on(today);
            }
            None
        } else {
            let inside = time >= self.from && self.to.is_none_or(|to| time < to);
            if self.day_listed(local.weekday()) && inside {
                end_on(today)
            } else {
                None
            }
        }
    }

    /// The next time the window opens after `at` (within eight days). A start
    /// that falls in a daylight-saving gap is skipped.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = at.with_timezone(&self.tz).date_naive();
        (0..=8)
            .filter_map(|d| today.checked_add_days(Days::new(d)))
            .filter(|date| self.day_listed(date.weekday()))
            .filter_map(|date| {
                self.tz
                    .from_local_datetime(&date.and_time(self.from))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .find(|t| *t > at)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let days: Vec<&str> = NAMES
            .iter()
            .zip(self.days)
            .filter_map(|(n, on)| on.then_some(*n))
            .collect();
        let to = self
            .to
            .map_or("24:00".to_owned(), |t| t.format("%H:%M").to_string());
        write!(
            f,
            "{} {}-{} {}",
            days.join(","),
            self.from.format("%H:%M"),
            to,
            self.tz
        )
    }
}

/// The miner's availability: open inside any window; always open without windows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Availability {
    windows: Vec<Window>,
}

impl Availability {
    pub fn new(windows: Vec<Window>) -> Self {
        Self { windows }
    }

    /// Whether the machine is offered at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|w| w.contains(at))
    }

    /// When the current availability ends: `None` if always available or
    /// closed now. Overlapping windows are followed to their end.
    pub fn open_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut end = self
            .windows
            .iter()
            .filter_map(|w| w.current_end(at))
            .max()?;
        // Follow chains of windows that are open at the moment the previous one closes.
        for _ in 0..self.windows.len() {
            match self.windows.iter().filter_map(|w| w.current_end(end)).max() {
                Some(next) if next > end => end = next,
                _ => break,
            }
        }
        Some(end)
    }

    /// The next opening after `at`, if closed now.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.windows.iter().filter_map(|w| w.next_open(at)).min()
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn days(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nights_wrap_past_midnight_in_local_time() {
        // Weeknights 19:00-07:00 in Berlin (UTC+1 in winter).
        let w = Window::new(&days(&["weekdays"]), "19:00", "07:00", "Europe/Berlin").unwrap();
        // Fri 2026-11-20 20:00 Berlin = 19:00 UTC: open, closes Sat 07:00 Berlin.
        assert!(w.contains(utc("2026-11-20T19:00:00Z")));
        assert_eq!(
            w.current_end(utc("2026-11-20T19:00:00Z")),
            Some(utc("2026-11-21T06:00:00Z"))
        );
        // Sat 05:00 Berlin: still Friday's night.
        assert!(w.contains(utc("2026-11-21T04:00:00Z")));
        // Sat 20:00 Berlin: Saturday is not listed.
        assert!(!w.contains(utc("2026-11-21T19:00:00Z")));
        // Mon 05:00 Berlin: Sunday's night is not listed.
        assert!(!w.contains(utc("2026-11-23T04:00:00Z")));
        // Tue 12:00 Berlin: daytime.
        assert!(!w.contains(utc("2026-11-24T11:00:00Z")));
        assert_eq!(
            w.next_open(utc("2026-11-24T11:00:00Z")),
            Some(utc("2026-11-24T18:00:00Z"))
        );
    }

    #[test]
    fn weekends_all_day_and_chained_availability() {
        let sat_sun = Window::new(&days(&["weekends"]), "00:00", "24:00", "UTC").unwrap();
        assert!(sat_sun.contains(utc("2026-11-21T00:00:00Z")));
        assert!(sat_sun.contains(utc("2026-11-22T23:59:59Z")));
        assert!(!sat_sun.contains(utc("2026-11-23T00:00:00Z")));
        let a = Availability::new(vec![sat_sun]);
        // Saturday's window runs into Sunday's: open until Monday 00:00.
        assert_eq!(
            a.open_until(utc("2026-11-21T10:00:00Z")),
            Some(utc("2026-11-23T00:00:00Z"))
        );
        assert_eq!(
            a.next_open(utc("2026-11-23T10:00:00Z")),
            Some(utc("2026-11-28T00:00:00Z"))
        );
    }

    #[test]
    fn no_windows_means_always() {
        let a = Availability::default();
        assert!(a.is_open(utc("2026-11-21T10:00:00Z")));
        assert_eq!(a.open_until(utc("2026-11-21T10:00:00Z")), None);
    }

    #[test]
    fn bad_windows_are_refused_with_reasons() {
        let err = |d: &[&str], f: &str, t: &str, z: &str| {
            Window::new(&days(d), f, t, z).unwrap_err().to_string()
        };
        assert!(err(&["funday"], "01:00", "02:00", "UTC").contains("unknown day \"funday\""));
        assert!(err(&[], "01:00", "02:00", "UTC").contains("at least one day"));
        assert!(err(&["mon"], "25:00", "02:00", "UTC").contains("not HH:MM"));
        assert!(err(&["mon"], "01:00", "7pm", "UTC").contains("\"7pm\""));
        assert!(err(&["mon"], "01:00", "02:00", "Mars/Olympus").contains("unknown time zone"));
        assert!(err(&["mon"], "05:00", "05:00", "UTC").contains("empty"));
    }

    #[test]
    fn daylight_saving_shift_keeps_local_hours() {
        // 2026-03-29: Berlin jumps from 02:00 to 03:00. A 01:00-04:00 window that day lasts
        // two real hours and closes at 04:00 local = 02:00 UTC.
        let w = Window::new(&days(&["sun"]), "01:00", "04:00", "Europe/Berlin").unwrap();
        assert_eq!(
            w.current_end(utc("2026-03-29T00:30:00Z")),
            Some(utc("2026-03-29T02:00:00Z"))
        );
        assert_eq!(w.to_string(), "sun 01:00-04:00 Europe/Berlin");
    }
}
