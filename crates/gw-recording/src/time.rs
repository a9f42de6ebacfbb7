//! RFC 3339 timestamps in UTC, to and from microseconds since the Unix epoch.
//!
//! Hand-rolled (civil-from-days arithmetic) because the format is tiny and a date
//! crate would be the only reason to pull one into the recording core.

/// Formats `us` (since the epoch) as `2026-11-24T14:05:00.123456Z`.
pub fn rfc3339(us: u64) -> String {
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM[:SS[.frac]]` with `Z` or `±HH:MM`.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut us = 0i64;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 16 || b[13] != b':' {
            return None;
        }
        let (h, mi) = (num(11..13)?, num(14..16)?);
        let mut i = 16;
        let mut sec = 0;
        if b.get(i) == Some(&b':') {
            sec = num(17..19)?;
            i = 19;
            if b.get(i) == Some(&b'.') {
                let start = i + 1;
                i = start;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                let frac = s.get(start..i)?;
                let padded: String = frac.chars().chain("000000".chars()).take(6).collect();
                us = padded.parse().ok()?;
            }
        }
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        secs += h * 3600 + mi * 60 + sec;
        match b.get(i) {
            None | Some(b'Z' | b'z') if b.len() <= i + 1 => {}
            Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
                let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
                secs += if sign == b'+' { -off } else { off };
            }
            _ => return None,
        }
    }
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(us as u64)
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let us = 1_795_529_100_123_456;
        let s = rfc3339(us);
        assert_eq!(s, "2026-11-24T14:05:00.123456Z");
        assert_eq!(parse_rfc3339(&s), Some(us));
        assert_eq!(parse_rfc3339("2026-11-24T15:05:00.123456+01:00"), Some(us));
        assert_eq!(parse_rfc3339("2026-11-24"), Some(1_795_478_400_000_000));
        assert_eq!(
            parse_rfc3339("2026-11-24T14:05Z"),
            Some(1_795_529_100_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
