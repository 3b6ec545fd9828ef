//! Where "now" comes from, and how times are written for people. The domain never reads a
//! clock; handlers and commands take the time from a [`Clock`] so tests and the demo can
//! fix it. Times are shown in China Standard Time (UTC+8, no daylight saving), the same on
//! every node, whatever the machine's time zone.

use std::time::{SystemTime, UNIX_EPOCH};

use yizhan_sync::domain::calendar::Date;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that always says the same time (tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// The system clock moved by a fixed offset: what `serve` gives the pages and the API
/// when `YIZHAN_CLOCK_OFFSET_DAYS` is set, so process tests can see deadlines pass (a
/// supervision notice escalating) without waiting days. `/sync/v1` judges request times
/// by the same clock, so such a node's links fail as with any clock set wrong: a test
/// moves a node's clock on only for what it reads there.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    pub offset_ms: i64,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms().saturating_add_signed(self.offset_ms)
    }
}

/// The system clock moved by an offset read from a file on every call: what `serve` gives
/// the pages and the API when `YIZHAN_CLOCK_FILE` is set, so a browser test can walk one
/// session through midnight, a holiday and a deadline while the node runs (a restart
/// would hide anything that remembers "today"). The file holds the offset in signed
/// milliseconds; a file that cannot be read keeps the last offset read. Only ever move it
/// forward: the store refuses writes timed before what it recorded.
#[derive(Debug)]
pub struct FileClock {
    path: std::path::PathBuf,
    last_offset_ms: std::sync::atomic::AtomicI64,
}

impl FileClock {
    pub fn new(path: std::path::PathBuf) -> FileClock {
        let clock = FileClock {
            path,
            last_offset_ms: std::sync::atomic::AtomicI64::new(0),
        };
        clock.offset_ms();
        clock
    }

    fn offset_ms(&self) -> i64 {
        use std::sync::atomic::Ordering;
        match std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
        {
            Some(offset) => {
                self.last_offset_ms.store(offset, Ordering::Relaxed);
                offset
            }
            None => self.last_offset_ms.load(Ordering::Relaxed),
        }
    }
}

impl Clock for FileClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms().saturating_add_signed(self.offset_ms())
    }
}

/// RFC 3339 time in China Standard Time, e.g. `2026-03-02T09:30:00+08:00`.
pub fn rfc3339_cst(unix_ms: i64) -> String {
    let local_ms = unix_ms + 8 * 3_600_000;
    let date = Date::from_unix_ms_cst(unix_ms);
    let seconds_of_day = local_ms.rem_euclid(86_400_000) / 1000;
    format!(
        "{date}T{:02}:{:02}:{:02}+08:00",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// Day and minute in China Standard Time, e.g. `2026-03-02 09:30`.
pub fn minute_cst(unix_ms: i64) -> String {
    let date = Date::from_unix_ms_cst(unix_ms);
    let minutes = (unix_ms + 8 * 3_600_000).rem_euclid(86_400_000) / 60_000;
    format!("{date} {:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_printed_in_china_standard_time() {
        assert_eq!(rfc3339_cst(0), "1970-01-01T08:00:00+08:00");
        assert_eq!(rfc3339_cst(1_772_726_399_000), "2026-03-05T23:59:59+08:00");
        assert_eq!(rfc3339_cst(1_772_726_400_000), "2026-03-06T00:00:00+08:00");
    }

    #[test]
    fn minutes_are_china_time() {
        // 2026-03-01T16:30:00Z is 2026-03-02 00:30 in China.
        let ms = (Date::from_ymd(2026, 3, 1).unwrap().days_since_epoch() as i64 * 86_400
            + 16 * 3600
            + 30 * 60)
            * 1000;
        assert_eq!(minute_cst(ms), "2026-03-02 00:30");
    }
}
