//! HTML by hand: one escaping helper, the page frame, and the formats every
//! page shares (durations, money, times).

use std::fmt::Write as _;

use kumo_core::rollup::Window;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub const PREFIX: &str = "/_kumo/dashboard";

/// Which section of the navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Logs,
    None,
}

/// Who is looking, for the page header.
pub struct Viewer<'a> {
    pub arn: &'a str,
    /// `None` under `--auth none` (no sign-out).
    pub csrf: Option<&'a str>,
}

/// A whole page around `body`.
pub fn page(title: &str, nav: Nav, viewer: Option<&Viewer<'_>>, body: &str) -> String {
    let link = |n: Nav, href: &str, label: &str| {
        let class = if n == nav { " class=\"active\"" } else { "" };
        format!("<a href=\"{PREFIX}{href}\"{class}>{label}</a>")
    };
    let who = match viewer {
        Some(v) => {
            let signout = match v.csrf {
                Some(csrf) => format!(
                    "<form method=\"post\" action=\"{PREFIX}/signout\" class=\"inline\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button class=\"link\">Sign out</button></form>",
                    esc(csrf)
                ),
                None => "<span class=\"muted\">--auth none</span>".to_string(),
            };
            format!("<span class=\"who\" title=\"{0}\">{0}</span>{signout}", esc(v.arn))
        }
        None => String::new(),
    };
    let nav_links = if viewer.is_some() {
        format!("{}{}", link(Nav::Overview, "", "Overview"), link(Nav::Logs, "/logs", "Logs"))
    } else {
        String::new()
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Kumo</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"{PREFIX}/assets/dashboard.css\">\
         <script src=\"{PREFIX}/assets/dashboard.js\" defer></script></head><body>\
         <header><a class=\"brand\" href=\"{PREFIX}\">☁ Kumo</a><nav>{nav_links}</nav><div class=\"spacer\"></div>{who}</header>\
         <main>{body}</main></body></html>",
        esc(title)
    )
}

/// The window selector: links (no JavaScript needed), the current one marked.
pub fn window_selector(base: &str, current: Window) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = String::from("<div class=\"windows\" role=\"group\" aria-label=\"window\">");
    for w in Window::ALL {
        let class = if w == current { " class=\"active\"" } else { "" };
        let _ = write!(out, "<a href=\"{}{sep}window={}\"{class}>{}</a>", esc(base), w.as_str(), w.as_str());
    }
    out.push_str("</div>");
    out
}

/// A figure card: a label and a big number.
pub fn card(label: &str, value: &str, note: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"figure\">{}</div><div class=\"note\">{}</div></div>",
        esc(label),
        esc(value),
        esc(note)
    )
}

/// Microseconds as a person reads them.
pub fn duration_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", us as f64 / 1_000_000.0)
    }
}

pub fn opt_duration(us: Option<u64>) -> String {
    us.map_or_else(|| "–".to_string(), duration_us)
}

/// Pricing units as dollars, with enough places to show sub-cent amounts.
pub fn usd(units: u64) -> String {
    let micro = kumo_core::pricing::units_to_micro_usd(u128::from(units));
    format!("${}", kumo_core::pricing::format_micro_usd(micro, if micro >= 10_000 { 2 } else { 6 }))
}

pub fn micro_usd(micro: u64) -> String {
    format!("${}", kumo_core::pricing::format_micro_usd(u128::from(micro), 2))
}

pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(ms: i64) -> String {
    let p = kumo_core::time::utc_parts(ms);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", p.year, p.month, p.day, p.hour, p.minute, p.second)
}

/// A short axis label for a bucket start at `resolution`.
pub fn axis_label(ms: i64, resolution: kumo_core::rollup::Resolution) -> String {
    let p = kumo_core::time::utc_parts(ms);
    match resolution {
        kumo_core::rollup::Resolution::Day => format!("{:02}-{:02}", p.month, p.day),
        _ => format!("{:02}:{:02}", p.hour, p.minute),
    }
}

pub fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A notice box (errors, refusals, empty states).
pub fn notice(kind: &str, text: &str) -> String {
    format!("<div class=\"notice {}\">{}</div>", esc(kind), esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(url_enc("a b/c:1"), "a%20b%2Fc%3A1");
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(duration_us(640), "640 µs");
        assert_eq!(duration_us(18_500), "18.50 ms");
        assert_eq!(duration_us(2_500_000), "2.50 s");
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(number(12), "12");
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(time(0), "1970-01-01 00:00:00");
    }
}
