//! A rule's ticks: rate schedules by arithmetic (in `kumo_core::schedule`),
//! cron schedules by croner, always in UTC.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use kumo_core::schedule::{Expression, InvalidExpression, last_rate_tick, next_rate_tick};

/// The ticks of one schedule expression.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `period_ms`, counted from `anchor_ms` (when the rule got this expression).
    Rate {
        anchor_ms: i64,
        period_ms: u64,
    },
    Cron(Box<Cron>),
}

impl Schedule {
    /// The schedule of `expression`; `anchor_ms` starts a rate schedule and
    /// `minute_ms` is how long one of its minutes lasts (60,000 but in tests).
    pub fn new(expression: &Expression, anchor_ms: i64, minute_ms: u64) -> Result<Schedule, InvalidExpression> {
        if let Some(period_ms) = expression.rate_period_ms(minute_ms) {
            return Ok(Schedule::Rate { anchor_ms, period_ms });
        }
        let pattern = expression.cron_with_seconds().ok_or(InvalidExpression)?;
        // EventBridge's dialect: a year field, Quartz weekdays (1 = Sunday),
        // `0/15` meaning "from 0 every 15"; seconds are always 0.
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Required)
            .alternative_weekdays(true)
            .sloppy_ranges(true)
            .build();
        let cron = parser.parse(&pattern).map_err(|_| InvalidExpression)?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first tick strictly after `after_ms`, if the schedule has one.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate { anchor_ms, period_ms } => Some(next_rate_tick(*anchor_ms, *period_ms, after_ms)),
            Schedule::Cron(cron) => {
                let at = utc(after_ms)?;
                cron.find_next_occurrence(&at, false).ok().map(|t| t.timestamp_millis()).filter(|t| *t > after_ms)
            }
        }
    }

    /// The last tick at or before `at_ms`, if there was one.
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate { anchor_ms, period_ms } => last_rate_tick(*anchor_ms, *period_ms, at_ms),
            Schedule::Cron(cron) => {
                // Ticks fall on whole seconds: search from the second `at_ms` is in.
                let at = utc(at_ms.div_euclid(1000) * 1000)?;
                cron.find_previous_occurrence(&at, true).ok().map(|t| t.timestamp_millis()).filter(|t| *t <= at_ms)
            }
        }
    }
}

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

/// RFC 3339 in whole seconds, UTC (`kumo schedule ls`, the API's times).
pub fn rfc3339(ms: i64) -> String {
    utc(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).unwrap_or(i64::MIN)
    }

    fn cron(expr: &str) -> Schedule {
        let e = Expression::parse(expr).unwrap_or_else(|_| panic!("{expr} should parse"));
        Schedule::new(&e, 0, 60_000).unwrap_or_else(|_| panic!("{expr} should compile"))
    }

    fn next_n(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut t = ms(from);
        let mut out = Vec::new();
        for _ in 0..n {
            match s.next_after(t) {
                Some(next) => {
                    out.push(rfc3339(next));
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn noon_every_day() {
        let s = cron("cron(0 12 * * ? *)");
        assert_eq!(
            next_n(&s, "2026-11-28T12:00:00Z", 2),
            vec!["2026-11-29T12:00:00Z".to_string(), "2026-11-30T12:00:00Z".to_string()]
        );
        assert_eq!(next_n(&s, "2026-11-28T11:59:59.999Z", 1), vec!["2026-11-28T12:00:00Z".to_string()]);
        assert_eq!(s.latest_at_or_before(ms("2026-11-28T12:00:00.400Z")), Some(ms("2026-11-28T12:00:00Z")));
        assert_eq!(s.latest_at_or_before(ms("2026-11-28T11:59:59Z")), Some(ms("2026-11-27T12:00:00Z")));
    }

    #[test]
    fn last_friday_in_two_years_only() {
        let s = cron("cron(15 10 ? * 6L 2026-2027)");
        assert_eq!(
            next_n(&s, "2026-11-28T00:00:00Z", 2),
            vec!["2026-12-25T10:15:00Z".to_string(), "2027-01-29T10:15:00Z".to_string()]
        );
        // After the last Friday of 2027 there is nothing more.
        assert_eq!(next_n(&s, "2027-12-31T10:15:00Z", 1), Vec::<String>::new());
    }

    #[test]
    fn every_quarter_hour_on_weekdays() {
        let s = cron("cron(0/15 * ? * MON-FRI *)");
        // 2026-11-27 is a Friday: the last tick is 23:45, then Monday 00:00.
        assert_eq!(
            next_n(&s, "2026-11-27T23:30:00Z", 2),
            vec!["2026-11-27T23:45:00Z".to_string(), "2026-11-30T00:00:00Z".to_string()]
        );
        assert_eq!(next_n(&s, "2026-11-30T00:07:00Z", 1), vec!["2026-11-30T00:15:00Z".to_string()]);
    }

    #[test]
    fn quartz_weekdays_and_nth() {
        // 2 = Monday; 1#2 = the second Sunday.
        assert_eq!(next_n(&cron("cron(0 18 ? * 2 *)"), "2026-11-28T00:00:00Z", 1), vec!["2026-11-30T18:00:00Z"]);
        assert_eq!(next_n(&cron("cron(0 0 ? * 1#2 *)"), "2026-11-28T00:00:00Z", 1), vec!["2026-12-13T00:00:00Z"]);
    }

    #[test]
    fn rate_ticks_with_a_short_minute() {
        let e = Expression::parse("rate(2 minutes)").unwrap_or(Expression::Cron(vec![]));
        let s = Schedule::new(&e, 10_000, 1_000).unwrap_or(Schedule::Rate { anchor_ms: 0, period_ms: 0 });
        assert_eq!(s.next_after(10_000), Some(12_000));
        assert_eq!(s.latest_at_or_before(17_500), Some(16_000));
    }
}
