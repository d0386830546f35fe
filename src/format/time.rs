//! The per-second time cache: a line's timestamp text, rebuilt once a second by
//! arithmetic, the zone's offset looked up once a minute.

use chrono::{Datelike, TimeZone, Timelike};

use crate::clock::{from_nanos, Zone};

#[derive(Debug)]
pub(super) struct TimeCache {
    sec: i64,
    /// The minute (since the epoch) `offset_secs` was looked up for.
    minute: i64,
    zone: Zone,
    offset_secs: i32,
    /// `YYYY-MM-DD HH:MM:SS`
    pub(super) text: [u8; 19],
    /// `+HH:MM`
    pub(super) offset: [u8; 6],
}

impl Default for TimeCache {
    fn default() -> Self {
        Self {
            sec: i64::MIN,
            minute: i64::MIN,
            zone: Zone::Utc,
            offset_secs: 0,
            text: [b'0'; 19],
            offset: *b"+00:00",
        }
    }
}

impl TimeCache {
    #[inline]
    pub(super) fn refresh(&mut self, nanos: i64, zone: Zone) -> u32 {
        let sec = nanos.div_euclid(1_000_000_000);
        let millis = (nanos.rem_euclid(1_000_000_000) / 1_000_000) as u32;
        if sec != self.sec || zone != self.zone {
            self.fill(sec, zone);
        }
        millis
    }

    /// A new second: the text is rebuilt by arithmetic. The zone's offset is looked up
    /// once a minute (offsets only change on minute boundaries), since asking the system
    /// zone costs a syscall and an allocation in chrono.
    #[cold]
    fn fill(&mut self, sec: i64, zone: Zone) {
        let minute = sec.div_euclid(60);
        if minute != self.minute || zone != self.zone {
            self.offset_secs = match zone {
                Zone::Utc => 0,
                Zone::Local => chrono::Local
                    .offset_from_utc_datetime(
                        &from_nanos(sec.saturating_mul(1_000_000_000)).naive_utc(),
                    )
                    .local_minus_utc(),
            };
            let off = self.offset_secs.unsigned_abs() / 60;
            self.offset = [
                if self.offset_secs < 0 { b'-' } else { b'+' },
                digit(off / 600),
                digit(off / 60 % 10),
                b':',
                digit(off % 60 / 10),
                digit(off % 10),
            ];
            self.minute = minute;
            self.zone = zone;
        }
        let local = from_nanos((sec + i64::from(self.offset_secs)).saturating_mul(1_000_000_000))
            .naive_utc();
        let year = local.year().clamp(0, 9999) as u32;
        let (month, day) = (local.month(), local.day());
        let (hour, min, s) = (local.hour(), local.minute(), local.second());
        self.text = [
            digit(year / 1000),
            digit(year / 100 % 10),
            digit(year / 10 % 10),
            digit(year % 10),
            b'-',
            digit(month / 10),
            digit(month % 10),
            b'-',
            digit(day / 10),
            digit(day % 10),
            b' ',
            digit(hour / 10),
            digit(hour % 10),
            b':',
            digit(min / 10),
            digit(min % 10),
            b':',
            digit(s / 10),
            digit(s % 10),
        ];
        self.sec = sec;
    }
}

#[inline]
fn digit(n: u32) -> u8 {
    b'0' + (n % 10) as u8
}
