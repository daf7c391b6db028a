//! `date`, and the calendar arithmetic that `touch -d` shares. WASI has no
//! time zones, so all times are UTC; civil dates are computed from the
//! epoch with the proleptic Gregorian calendar (400-year eras).

use crate::ctx::{Ctx, errmsg};
use crate::opts;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds and nanoseconds since the epoch (negative before it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> Stamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Stamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => Stamp { secs, nanos: 0 },
                    n => Stamp {
                        secs: secs - 1,
                        nanos: 1_000_000_000 - n,
                    },
                }
            }
        }
    }

    pub fn to_system(self) -> Option<SystemTime> {
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        if self.secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(self.secs.unsigned_abs()) + nanos)
        } else {
            UNIX_EPOCH
                .checked_sub(Duration::from_secs(self.secs.unsigned_abs()))?
                .checked_add(nanos)
        }
    }
}

/// Days since 1970-01-01 of year `y`, month `m` (1-12), day `d` (1-31).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Years start in March here, so the leap day ends a year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((m + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(d) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tm {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 is Sunday.
    pub wday: u32,
    /// 0 is January 1st.
    pub yday: u32,
    pub nanos: u32,
    pub epoch: i64,
}

impl Tm {
    pub fn from_stamp(s: Stamp) -> Tm {
        let days = s.secs.div_euclid(86_400);
        let rem = s.secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let part = |n: i64| u32::try_from(n).unwrap_or(0);
        Tm {
            year,
            month,
            day,
            hour: part(rem / 3600),
            min: part(rem / 60 % 60),
            sec: part(rem % 60),
            // 1970-01-01 was a Thursday.
            wday: part((days + 4).rem_euclid(7)),
            yday: part(days - days_from_civil(year, 1, 1)),
            nanos: s.nanos,
            epoch: s.secs,
        }
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The default output, like coreutils: `Mon Nov 30 04:10:00 UTC 2026`.
pub const DEFAULT_FORMAT: &str = "%a %b %e %H:%M:%S %Z %Y";

/// Expands strftime-style `%` specifiers. A `-` after the `%` drops the
/// padding, `_` pads with spaces, `0` with zeros. Unknown ones stay as they
/// are.
pub fn strftime(tm: &Tm, format: &str) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let pad = match chars.peek() {
            Some(&f @ ('-' | '_' | '0')) => {
                chars.next();
                Some(f)
            }
            _ => None,
        };
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        let num = |n: i64, width: usize, fill: char| -> String {
            let fill = match pad {
                Some('-') => return n.to_string(),
                Some('_') => ' ',
                Some(_) => '0',
                None => fill,
            };
            let s = n.unsigned_abs().to_string();
            let sign = if n < 0 { "-" } else { "" };
            let padding: String =
                std::iter::repeat_n(fill, width.saturating_sub(s.len())).collect();
            format!("{sign}{padding}{s}")
        };
        let day_name = DAYS[tm.wday as usize % 7];
        let month_name = MONTHS[(tm.month as usize + 11) % 12];
        let hour12 = match tm.hour % 12 {
            0 => 12,
            h => h,
        };
        let text = match spec {
            'a' => day_name[..3].to_string(),
            'A' => day_name.to_string(),
            'b' | 'h' => month_name[..3].to_string(),
            'B' => month_name.to_string(),
            'c' => strftime(tm, "%a %b %e %H:%M:%S %Y"),
            'C' => num(tm.year.div_euclid(100), 2, '0'),
            'd' => num(i64::from(tm.day), 2, '0'),
            'D' | 'x' => strftime(tm, "%m/%d/%y"),
            'e' => num(i64::from(tm.day), 2, ' '),
            'F' => strftime(tm, "%Y-%m-%d"),
            'H' => num(i64::from(tm.hour), 2, '0'),
            'I' => num(i64::from(hour12), 2, '0'),
            'j' => num(i64::from(tm.yday) + 1, 3, '0'),
            'k' => num(i64::from(tm.hour), 2, ' '),
            'l' => num(i64::from(hour12), 2, ' '),
            'm' => num(i64::from(tm.month), 2, '0'),
            'M' => num(i64::from(tm.min), 2, '0'),
            'n' => "\n".to_string(),
            'N' => format!("{:09}", tm.nanos),
            'p' => if tm.hour < 12 { "AM" } else { "PM" }.to_string(),
            'P' => if tm.hour < 12 { "am" } else { "pm" }.to_string(),
            'r' => strftime(tm, "%I:%M:%S %p"),
            'R' => strftime(tm, "%H:%M"),
            's' => tm.epoch.to_string(),
            'S' => num(i64::from(tm.sec), 2, '0'),
            't' => "\t".to_string(),
            'T' | 'X' => strftime(tm, "%H:%M:%S"),
            'u' => (if tm.wday == 0 { 7 } else { tm.wday }).to_string(),
            'w' => tm.wday.to_string(),
            'y' => num(tm.year.rem_euclid(100), 2, '0'),
            'Y' => tm.year.to_string(),
            'z' => "+0000".to_string(),
            'Z' => "UTC".to_string(),
            '%' => "%".to_string(),
            other => {
                let mut s = String::from("%");
                if let Some(p) = pad {
                    s.push(p);
                }
                s.push(other);
                s
            }
        };
        out.push_str(&text);
    }
    out
}

/// Parses a date for `date -d` and `touch -d`: `@EPOCH[.FRACTION]`, `now`,
/// `YYYY-MM-DD`, `YYYY-MM-DD[ T]HH:MM[:SS[.FRACTION]][Z]` or `HH:MM[:SS]`
/// (today). Times are UTC.
pub fn parse_date(s: &str, now: Stamp) -> Option<Stamp> {
    let s = s.trim();
    if s == "now" {
        return Some(now);
    }
    if let Some(epoch) = s.strip_prefix('@') {
        let (int, frac) = epoch.split_once('.').unwrap_or((epoch, ""));
        let secs: i64 = int.parse().ok()?;
        let nanos = fraction(frac)?;
        return Some(if secs < 0 && nanos > 0 {
            Stamp {
                secs: secs - 1,
                nanos: 1_000_000_000 - nanos,
            }
        } else {
            Stamp { secs, nanos }
        });
    }
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix(" UTC"))
        .unwrap_or(s);
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (Some(d), Some(t)),
        None if s.contains(':') => (None, Some(s)),
        None => (Some(s), None),
    };
    let days = match date {
        Some(date) => {
            let mut parts = date.splitn(3, '-');
            let y: i64 = digits(parts.next()?)?;
            let m: u32 = digits(parts.next()?)?;
            let d: u32 = digits(parts.next()?)?;
            if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
                return None;
            }
            days_from_civil(y, m, d)
        }
        None => now.secs.div_euclid(86_400),
    };
    let (mut secs, mut nanos) = (0i64, 0u32);
    if let Some(time) = time {
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut parts = hms.split(':');
        let h: i64 = digits(parts.next()?)?;
        let m: i64 = digits(parts.next()?)?;
        let sec: i64 = match parts.next() {
            Some(p) => digits(p)?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
            return None;
        }
        secs = h * 3600 + m * 60 + sec;
        nanos = fraction(frac)?;
    }
    Some(Stamp {
        secs: days * 86_400 + secs,
        nanos,
    })
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `.123` -> 123000000 nanoseconds.
fn fraction(frac: &str) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut padded: String = frac.chars().take(9).collect();
    while padded.len() < 9 {
        padded.push('0');
    }
    padded.parse().ok()
}

/// `date [-uR] [-d DATE | -r FILE] [+FORMAT]`
pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "uRI", "dr") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("date", msg),
    };
    let mut format = if opts.has('R') {
        "%a, %d %b %Y %H:%M:%S %z"
    } else if opts.has('I') {
        "%Y-%m-%d"
    } else {
        DEFAULT_FORMAT
    };
    for operand in &opts.operands {
        match operand.strip_prefix('+') {
            Some(f) if format == DEFAULT_FORMAT => format = f,
            Some(_) => return ctx.fail("date", "multiple output formats specified"),
            // MMDDhhmm[[CC]YY] would set the clock, which WASI cannot.
            None => {
                return ctx.fail(
                    "date",
                    format!("cannot set date to '{operand}': not supported"),
                );
            }
        }
    }
    let now = Stamp::now();
    let stamp = if let Some(d) = opts.value('d') {
        match parse_date(d, now) {
            Some(s) => s,
            None => return ctx.fail("date", format!("invalid date '{d}'")),
        }
    } else if let Some(file) = opts.value('r') {
        match std::fs::metadata(file).and_then(|m| m.modified()) {
            Ok(t) => Stamp::from_system(t),
            Err(e) => return ctx.fail("date", format!("{file}: {}", errmsg(&e))),
        }
    } else {
        now
    };
    let text = strftime(&Tm::from_stamp(stamp), format);
    match writeln!(ctx.stdout, "{text}") {
        Ok(()) => 0,
        Err(e) => ctx.fail("date", format!("write error: {}", errmsg(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::{Env, capture};

    fn date(args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture("", &Env::new(), |ctx| main(ctx, &args))
    }

    fn at(secs: i64) -> Tm {
        Tm::from_stamp(Stamp { secs, nanos: 0 })
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1600, 1, 1), -135_140);
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in_month(y, m));
        }
        let tm = at(1_796_011_800);
        assert_eq!((tm.year, tm.month, tm.day), (2026, 11, 30));
        assert_eq!(
            (tm.hour, tm.min, tm.sec, tm.wday, tm.yday),
            (4, 10, 0, 1, 333)
        );
    }

    #[test]
    fn formats() {
        let tm = at(1_796_011_800);
        assert_eq!(
            strftime(&tm, DEFAULT_FORMAT),
            "Mon Nov 30 04:10:00 UTC 2026"
        );
        assert_eq!(
            strftime(&at(0), DEFAULT_FORMAT),
            "Thu Jan  1 00:00:00 UTC 1970"
        );
        assert_eq!(
            strftime(&tm, "%F %T %s %j %u %w %y %C %D %R %I %p %A %B %z %%"),
            "2026-11-30 04:10:00 1796011800 334 1 1 26 20 11/30/26 04:10 04 AM Monday November +0000 %"
        );
        assert_eq!(
            strftime(&at(3 * 86_400 + 13 * 3600), "%-d %_m %e %l %P %q"),
            "4  1  4  1 pm %q"
        );
        assert_eq!(
            strftime(&at(-1), "%Y-%m-%d %H:%M:%S"),
            "1969-12-31 23:59:59"
        );
    }

    #[test]
    fn parses_dates() {
        let now = Stamp {
            secs: 1_796_011_800,
            nanos: 5,
        };
        let secs = |s: &str| parse_date(s, now).map(|t| t.secs);
        assert_eq!(secs("@0"), Some(0));
        assert_eq!(secs("@-86400"), Some(-86_400));
        assert_eq!(
            parse_date("@1.5", now),
            Some(Stamp {
                secs: 1,
                nanos: 500_000_000
            })
        );
        assert_eq!(secs("now"), Some(now.secs));
        assert_eq!(secs("2026-11-30"), Some(1_795_996_800));
        assert_eq!(secs("2026-11-30 04:10"), Some(1_796_011_800));
        assert_eq!(secs("2026-11-30T04:10:00Z"), Some(1_796_011_800));
        assert_eq!(secs("12:00"), Some(1_795_996_800 + 12 * 3600));
        for bad in [
            "",
            "x",
            "2026-13-01",
            "2026-02-29",
            "2026-11-30 25:00",
            "@x",
            "1:2:3:4",
        ] {
            assert_eq!(secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn applet() {
        assert_eq!(date(&["-d", "@0"]).1, "Thu Jan  1 00:00:00 UTC 1970\n");
        assert_eq!(date(&["-u", "-d", "@86399", "+%H:%M:%S"]).1, "23:59:59\n");
        assert_eq!(
            date(&["-R", "-d", "@0"]).1,
            "Thu, 01 Jan 1970 00:00:00 +0000\n"
        );
        assert_eq!(date(&["-I", "-d", "@0"]).1, "1970-01-01\n");
        let (code, out, _) = date(&["+%Y"]);
        assert_eq!(code, 0);
        assert!(out.trim().parse::<i64>().unwrap_or(0) >= 2024, "{out}");
        let (code, _, err) = date(&["-d", "yesterday"]);
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: date: invalid date 'yesterday'\n")
        );
        let (code, _, err) = date(&["0101"]);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "busybox: date: cannot set date to '0101': not supported\n"
        );
    }
}
