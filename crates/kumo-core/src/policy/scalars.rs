//! The typed values condition operators compare: numbers, booleans, dates and
//! IP ranges, parsed here without any dependency.

use std::net::IpAddr;

/// A decimal number as IAM's numeric operators accept it (`42`, `-1.5`, `2e3`).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (body.get(..i)?, Some(body.get(i + 1..)?)),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    // Rust's float parser also takes `inf` and `NaN`; IAM numbers are plain decimals.
    let shape_ok = all_digits(int)
        && frac.is_none_or(all_digits)
        && !(int.is_empty() && frac.is_none_or(str::is_empty))
        && exponent.is_none_or(|e| {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            !digits.is_empty() && all_digits(digits)
        });
    if !shape_ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A cursor over ASCII date text.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(slice.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')))
    }

    fn eat(&mut self, expected: u8) -> bool {
        if self.bytes.get(self.at) == Some(&expected) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// Milliseconds since the epoch of a date as IAM's date operators take it:
/// ISO 8601 (`2024-03-01`, `2024-03-01T12:00Z`, `2024-03-01T12:00:00.5+02:00`,
/// no zone meaning UTC) or a whole number of epoch seconds.
pub(crate) fn parse_date_ms(s: &str) -> Option<i64> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    if !unsigned.is_empty() && unsigned.len() <= 15 && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok()?.checked_mul(1000);
    }
    let mut c = Cursor { bytes: s.as_bytes(), at: 0 };
    let year = i64::from(c.digits(4)?);
    if !c.eat(b'-') {
        return None;
    }
    let month = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms_of_day: i64 = 0;
    let mut offset_ms: i64 = 0;
    if c.eat(b'T') || c.eat(b't') {
        let hour = c.digits(2)?;
        if !c.eat(b':') {
            return None;
        }
        let minute = c.digits(2)?;
        let mut second = 0;
        let mut millis = 0;
        if c.eat(b':') {
            second = c.digits(2)?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.at;
                let mut scale = 100;
                while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                    millis += u32::from(d - b'0') * scale;
                    scale /= 10;
                    c.at += 1;
                }
                if c.at == start {
                    return None;
                }
            }
        }
        // 60 admits a leap second, which IAM's inputs may carry.
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        ms_of_day =
            i64::from(hour) * 3_600_000 + i64::from(minute) * 60_000 + i64::from(second) * 1000 + i64::from(millis);
        match c.peek() {
            None => {}
            Some(b'Z' | b'z') => c.at += 1,
            Some(sign @ (b'+' | b'-')) => {
                c.at += 1;
                let oh = c.digits(2)?;
                c.eat(b':');
                let om = if c.done() { 0 } else { c.digits(2)? };
                if oh > 23 || om > 59 {
                    return None;
                }
                let magnitude = i64::from(oh) * 3_600_000 + i64::from(om) * 60_000;
                offset_ms = if sign == b'+' { magnitude } else { -magnitude };
            }
            Some(_) => return None,
        }
    }
    if !c.done() {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400_000 + ms_of_day - offset_ms)
}

/// `aws:CurrentTime` as AWS renders it: `2024-03-01T12:00:00Z`.
pub(crate) fn iso8601_seconds(epoch_ms: i64) -> String {
    let p = crate::time::utc_parts(epoch_ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", p.year, p.month, p.day, p.hour, p.minute, p.second)
}

/// An address range from an `IpAddress` condition value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `203.0.113.0/24`, `2001:db8::/32`, or a bare address (a single host).
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        // A v4 client seen through a dual-stack socket arrives as ::ffff:a.b.c.d.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                same_prefix(u128::from(u32::from(net)), u128::from(u32::from(a)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => same_prefix(u128::from(net), u128::from(a), self.prefix, 128),
            _ => false,
        }
    }
}

fn same_prefix(net: u128, addr: u128, prefix: u8, width: u32) -> bool {
    let host_bits = width.saturating_sub(u32::from(prefix));
    if host_bits >= width {
        return true;
    }
    (net >> host_bits) == (addr >> host_bits)
}

/// A request's address: a bare IP, tolerating a `/n` suffix.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    addr.trim().parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("42"), Some(42.0));
        assert_eq!(parse_number("-1.5"), Some(-1.5));
        assert_eq!(parse_number("2e3"), Some(2000.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        for bad in ["", "-", ".", "inf", "NaN", "1e", "1x", "0x10", " 1", "1e400"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date_ms("1970-01-01"), Some(0));
        assert_eq!(parse_date_ms("2020-04-10T19:06:32.563Z"), Some(1_586_545_592_563));
        assert_eq!(parse_date_ms("2020-04-10T21:06:32.563+02:00"), Some(1_586_545_592_563));
        assert_eq!(parse_date_ms("2020-04-10T18:06:32.563-0100"), Some(1_586_545_592_563));
        assert_eq!(parse_date_ms("2020-04-10T19:06:32.563"), Some(1_586_545_592_563));
        assert_eq!(parse_date_ms("2024-02-29T00:00Z"), Some(1_709_164_800_000));
        assert_eq!(parse_date_ms("1586545592"), Some(1_586_545_592_000));
        assert_eq!(parse_date_ms("-1"), Some(-1000));
        for bad in [
            "",
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T24:00Z",
            "2024-01-01T",
            "2024-1-01",
            "2024-01-01Tx",
            "yesterday",
            "2024-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_date_ms(bad), None, "{bad}");
        }
        assert_eq!(iso8601_seconds(1_586_545_592_563), "2020-04-10T19:06:32Z");
        assert_eq!(parse_date_ms(&iso8601_seconds(1_586_545_592_000)), Some(1_586_545_592_000));
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(net.contains("203.0.113.9".parse().unwrap()));
        assert!(!net.contains("203.0.114.9".parse().unwrap()));
        assert!(net.contains("::ffff:203.0.113.9".parse().unwrap()));
        let host = Cidr::parse("192.0.2.1").unwrap();
        assert!(host.contains("192.0.2.1".parse().unwrap()));
        assert!(!host.contains("192.0.2.2".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(!v6.contains("203.0.113.9".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("::/0").unwrap().contains("::1".parse().unwrap()));
        for bad in ["203.0.113.0/33", "203.0.113.0/", "nope", "1.2.3.4/x", "::/129"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
        assert_eq!(parse_ip("10.0.0.1/32"), Some("10.0.0.1".parse().unwrap()));
    }
}
