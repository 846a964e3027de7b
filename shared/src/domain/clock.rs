//! Time as a port, so leases and expiries can be tested without sleeping.

use std::sync::Mutex;
use time::macros::datetime;
use time::{Duration, OffsetDateTime, UtcOffset};

/// The earliest instant genhook emits or its parsers return: RFC 3339 has four-digit
/// years, so 0000-01-01T00:00:00Z.
pub const MIN_INSTANT: OffsetDateTime = datetime!(0000-01-01 00:00:00 UTC);
/// The latest such instant, 9999-12-31T23:59:59.999999999Z.
pub const MAX_INSTANT: OffsetDateTime = datetime!(9999-12-31 23:59:59.999_999_999 UTC);

/// `t` in UTC, clamped to [`MIN_INSTANT`]..=[`MAX_INSTANT`].
pub fn clamp_instant(t: OffsetDateTime) -> OffsetDateTime {
    match t.checked_to_offset(UtcOffset::UTC) {
        Some(utc) => utc.clamp(MIN_INSTANT, MAX_INSTANT),
        // Only instants at the very ends of `time`'s range have no UTC form.
        None if t.year() > 0 => MAX_INSTANT,
        None => MIN_INSTANT,
    }
}

/// `base` moved by `secs` seconds, in UTC, saturating at [`MIN_INSTANT`] /
/// [`MAX_INSTANT`] instead of overflowing.
pub fn offset_by_secs(base: OffsetDateTime, secs: i64) -> OffsetDateTime {
    match base.checked_add(Duration::seconds(secs)) {
        Some(t) => clamp_instant(t),
        None if secs > 0 => MAX_INSTANT,
        None => MIN_INSTANT,
    }
}

/// Epoch seconds as an instant, saturating like [`offset_by_secs`].
pub fn from_epoch_secs(secs: i64) -> OffsetDateTime {
    offset_by_secs(OffsetDateTime::UNIX_EPOCH, secs)
}

/// `d` in whole milliseconds, saturating at `i64::MAX` (a configured span never wraps
/// negative).
pub fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `d` in whole seconds, saturating at `i64::MAX`.
pub fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// `d` in seconds rounded up (a wait or a lifetime is never cut short), saturating at
/// `i64::MAX`.
pub fn secs_ceil(d: std::time::Duration) -> i64 {
    secs(d).saturating_add(i64::from(d.subsec_nanos() > 0))
}

/// `t` in epoch milliseconds, saturating at `i64`'s bounds.
pub fn epoch_ms(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant (UTC).
    fn now(&self) -> OffsetDateTime;

    /// The current instant in epoch milliseconds.
    fn now_ms(&self) -> i64 {
        epoch_ms(self.now())
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.saturating_add(by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Formats an instant as RFC 3339 in UTC (the format of every timestamp genhook emits).
/// Never fails: instants outside years 0000–9999, which RFC 3339 cannot express, are
/// clamped to [`MIN_INSTANT`] / [`MAX_INSTANT`] first.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = clamp_instant(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| {
        // Unreachable for a clamped UTC instant; spelled out so this cannot panic.
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::PrimitiveDateTime;

    #[test]
    fn extreme_instants_format() {
        // Panicked before: years outside 0000-9999 have no RFC 3339 form.
        assert_eq!(rfc3339(PrimitiveDateTime::MIN.assume_utc()), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(PrimitiveDateTime::MAX.assume_utc()), "9999-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339(PrimitiveDateTime::MAX.assume_offset(time::macros::offset!(-23:59))), rfc3339(MAX_INSTANT));
        assert_eq!(rfc3339(PrimitiveDateTime::MIN.assume_offset(time::macros::offset!(+23:59))), rfc3339(MIN_INSTANT));
    }

    #[test]
    fn spans_convert_saturating_and_waits_round_up() {
        use std::time::Duration as Span;
        assert_eq!((millis(Span::from_millis(1500)), secs(Span::from_millis(1500))), (1500, 1));
        assert_eq!(secs_ceil(Span::from_millis(1500)), 2);
        assert_eq!(secs_ceil(Span::from_secs(2)), 2);
        assert_eq!(secs_ceil(Span::from_nanos(1)), 1);
        assert_eq!((millis(Span::MAX), secs(Span::MAX), secs_ceil(Span::MAX)), (i64::MAX, i64::MAX, i64::MAX));
        assert_eq!(epoch_ms(datetime!(1970-01-01 00:00:01.5 UTC)), 1500);
        assert_eq!(epoch_ms(datetime!(1969-12-31 23:59:59 UTC)), -1000);
        assert_eq!(epoch_ms(PrimitiveDateTime::MAX.assume_utc()), 253_402_300_799_999);
    }

    #[test]
    fn instants_are_emitted_in_utc() {
        assert_eq!(rfc3339(datetime!(2026-11-23 13:00:00 +01:00)), "2026-11-23T12:00:00Z");
        assert_eq!(rfc3339(datetime!(0000-01-01 00:30:00 +01:00)), "0000-01-01T00:00:00Z");
    }
}
