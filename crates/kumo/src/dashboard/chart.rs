//! Charts as inline SVG, drawn on the server: they need no JavaScript and no
//! third-party code. Line charts (one or more series, gaps where a bucket had
//! no data) and bar charts, with a y axis of round numbers and time labels.

use std::fmt::Write as _;

use super::html::esc;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Line,
    Bar,
}

/// One line (or the bars) of a chart.
pub struct Series {
    pub name: String,
    /// `None`: no data in that bucket (a gap in a line).
    pub points: Vec<Option<f64>>,
    /// Drawn dashed: a limit or reference, not a measurement.
    pub reference: bool,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub labels: Vec<String>,
    pub series: Vec<Series>,
    pub kind: Kind,
    pub format: fn(f64) -> String,
}

/// The smallest "round" number (1, 2, 2.5, 5 × 10ⁿ) at or above `v`.
pub fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= v * 0.999_999 {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

pub fn render(c: &Chart<'_>) -> String {
    let n = c.labels.len().max(1);
    let max = c.series.iter().flat_map(|s| s.points.iter().flatten()).fold(0.0f64, |m, v| m.max(*v));
    // Four gridline steps of a round size, so every label is a round number.
    let top = nice_ceil(max / 4.0) * 4.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let x = |i: usize| match c.kind {
        Kind::Bar => LEFT + slot * (i as f64 + 0.5),
        Kind::Line if n == 1 => LEFT + plot_w / 2.0,
        Kind::Line => LEFT + plot_w * i as f64 / (n - 1) as f64,
    };
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure class=\"chart\"><figcaption>{}</figcaption>\
         <svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"none\">",
        esc(c.title),
        esc(c.title)
    );
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        let yy = y(v);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"ylabel\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            esc(&(c.format)(v))
        );
    }
    let every = n.div_ceil(6).max(1);
    for (i, label) in c.labels.iter().enumerate() {
        if i % every == 0 || i + 1 == n {
            let _ =
                write!(svg, "<text class=\"xlabel\" x=\"{:.1}\" y=\"{:.1}\">{}</text>", x(i), HEIGHT - 8.0, esc(label));
        }
    }
    let bars = c.series.iter().filter(|s| !s.reference).count().max(1);
    let mut bar_index = 0;
    for (si, s) in c.series.iter().enumerate() {
        let class = format!("s{}{}", si % 4, if s.reference { " ref" } else { "" });
        match c.kind {
            Kind::Bar if !s.reference => {
                let w = (slot * 0.8) / bars as f64;
                for (i, v) in s.points.iter().enumerate() {
                    let v = v.unwrap_or(0.0);
                    let left = x(i) - slot * 0.4 + w * bar_index as f64;
                    let h = (TOP + plot_h) - y(v);
                    let _ = write!(
                        svg,
                        "<rect class=\"{class}\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"><title>{}: {}</title></rect>",
                        y(v),
                        esc(&c.labels.get(i).cloned().unwrap_or_default()),
                        esc(&(c.format)(v))
                    );
                }
                bar_index += 1;
            }
            _ => {
                let mut d = String::new();
                let mut pen_down = false;
                for (i, v) in s.points.iter().enumerate() {
                    match v {
                        Some(v) => {
                            let _ = write!(d, "{}{:.1} {:.1} ", if pen_down { "L" } else { "M" }, x(i), y(*v));
                            pen_down = true;
                        }
                        None => pen_down = false,
                    }
                }
                if d.is_empty() {
                    // No data at all: a flat line at zero still shows the chart is alive.
                    let _ = write!(d, "M{LEFT:.1} {:.1} L{:.1} {:.1}", y(0.0), WIDTH - RIGHT, y(0.0));
                }
                let _ = write!(
                    svg,
                    "<path class=\"{class}\" d=\"{}\"><title>{}</title></path>",
                    d.trim_end(),
                    esc(&s.name)
                );
                // Lone points would be invisible as a line: mark each with a dot.
                for (i, v) in s.points.iter().enumerate() {
                    let isolated = v.is_some()
                        && (i == 0 || s.points[i - 1].is_none())
                        && s.points.get(i + 1).is_none_or(|n| n.is_none());
                    if let (true, Some(v)) = (isolated && !s.reference, v) {
                        let _ =
                            write!(svg, "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>", x(i), y(*v));
                    }
                }
            }
        }
    }
    svg.push_str("</svg><div class=\"legend\">");
    for (si, s) in c.series.iter().enumerate() {
        let _ = write!(svg, "<span><i class=\"s{}\"></i>{}</span>", si % 4, esc(&s.name));
    }
    svg.push_str("</div></figure>");
    svg
}

/// Axis formats.
pub fn fmt_count(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 1_000.0 {
        format!("{:.1}k", v / 1_000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 { format!("{:.1} s", v / 1000.0) } else { format!("{} ms", fmt_count(v)) }
}

pub fn fmt_mb(v: f64) -> String {
    format!("{v:.0} MB")
}

pub fn fmt_usd(v: f64) -> String {
    if v == 0.0 {
        "$0".to_string()
    } else if v < 0.01 {
        format!("${v:.6}")
    } else {
        format!("${v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(7.0), 10.0);
        assert_eq!(nice_ceil(120.0), 200.0);
        assert_eq!(nice_ceil(2.3), 2.5);
        assert_eq!(nice_ceil(50.0), 50.0);
    }

    #[test]
    fn gridlines_fall_on_round_numbers() {
        let svg = render(&Chart {
            title: "t",
            labels: vec!["a".into(), "b".into()],
            series: vec![Series { name: "n".into(), points: vec![Some(3.0), Some(1.0)], reference: false }],
            kind: Kind::Line,
            format: fmt_count,
        });
        for label in ["0", "1", "2", "3", "4"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label} in {svg}");
        }
    }

    #[test]
    fn lines_break_at_gaps_and_bars_are_drawn() {
        let chart = Chart {
            title: "Invocations <all>",
            labels: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            series: vec![Series {
                name: "n".into(),
                points: vec![Some(1.0), None, Some(2.0), Some(4.0)],
                reference: false,
            }],
            kind: Kind::Line,
            format: fmt_count,
        };
        let svg = render(&chart);
        assert!(svg.contains("Invocations &lt;all&gt;"));
        let path = svg.split("<path").nth(1).unwrap_or("");
        assert_eq!(path.matches('M').count(), 2, "a gap starts a new stroke: {path}");
        assert_eq!(svg.matches("<circle").count(), 1, "the lone first point gets a dot");
        let bars = render(&Chart { kind: Kind::Bar, ..chart });
        assert_eq!(bars.matches("<rect").count(), 4);
    }

    #[test]
    fn an_empty_chart_still_draws_its_baseline() {
        let svg = render(&Chart {
            title: "t",
            labels: vec!["a".into()],
            series: vec![Series { name: "n".into(), points: vec![None], reference: false }],
            kind: Kind::Line,
            format: fmt_ms,
        });
        assert!(svg.contains("<path class=\"s0\" d=\"M"));
    }
}
