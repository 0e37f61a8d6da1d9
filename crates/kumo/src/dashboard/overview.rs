//! The overview: every function the principal may read, with its figures for
//! the window, charts over time, the async queue and budgets.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use kumo_core::rollup::{Rollup, Window};

use super::chart::{self, Chart, Kind, Series};
use super::html::{self, PREFIX, esc, url_enc};
use super::{Dashboard, Principal, html_response};
use crate::store::RollupRow;

/// The window's buckets, each the merge of `rows` falling in it (empty ones too).
pub(super) fn by_bucket(window: Window, now: i64, rows: &[RollupRow]) -> Vec<(i64, Rollup)> {
    let mut buckets: BTreeMap<i64, Rollup> =
        window.bucket_starts(now).into_iter().map(|b| (b, Rollup::default())).collect();
    for r in rows {
        if let Some(b) = buckets.get_mut(&r.bucket_ms) {
            b.merge(&r.rollup);
        }
    }
    buckets.into_iter().collect()
}

pub(super) fn labels(window: Window, buckets: &[(i64, Rollup)]) -> Vec<String> {
    buckets.iter().map(|(b, _)| html::axis_label(*b, window.resolution())).collect()
}

/// The p50 / p99 duration card over a window's merged rollup (overview and function pages).
pub(super) fn duration_card(total: &Rollup) -> String {
    html::card(
        "Duration p50 / p99",
        &format!(
            "{} / {}",
            html::opt_duration(total.percentile_us(0.5)),
            html::opt_duration(total.percentile_us(0.99))
        ),
        "",
    )
}

/// Invocations, errors and throttles per bucket.
pub(super) fn traffic_chart(window: Window, buckets: &[(i64, Rollup)]) -> String {
    let pick = |f: fn(&Rollup) -> u64| buckets.iter().map(|(_, r)| Some(f(r) as f64)).collect::<Vec<_>>();
    chart::render(&Chart {
        title: "Invocations",
        labels: labels(window, buckets),
        series: vec![
            Series { name: "invocations".into(), points: pick(|r| r.invocations), reference: false },
            Series { name: "errors".into(), points: pick(|r| r.errors), reference: false },
            Series { name: "throttles".into(), points: pick(|r| r.throttles), reference: false },
        ],
        kind: Kind::Line,
        format: chart::fmt_count,
    })
}

/// p50 and p99 duration per bucket, in milliseconds (gaps where nothing ran).
pub(super) fn duration_chart(window: Window, buckets: &[(i64, Rollup)]) -> String {
    let pct = |p: f64| buckets.iter().map(|(_, r)| r.percentile_us(p).map(|us| us as f64 / 1000.0)).collect();
    chart::render(&Chart {
        title: "Duration (p50, p99)",
        labels: labels(window, buckets),
        series: vec![
            Series { name: "p50".into(), points: pct(0.5), reference: false },
            Series { name: "p99".into(), points: pct(0.99), reference: false },
        ],
        kind: Kind::Line,
        format: chart::fmt_ms,
    })
}

pub(super) fn cost_chart(title: &str, window: Window, buckets: &[(i64, Rollup)]) -> String {
    let usd = |r: &Rollup| kumo_core::pricing::units_to_micro_usd(u128::from(r.cost_units)) as f64 / 1_000_000.0;
    chart::render(&Chart {
        title,
        labels: labels(window, buckets),
        series: vec![Series {
            name: "cost".into(),
            points: buckets.iter().map(|(_, r)| Some(usd(r))).collect(),
            reference: false,
        }],
        kind: Kind::Bar,
        format: chart::fmt_usd,
    })
}

/// The functions the principal may read, by name.
pub(super) fn visible_functions(d: &Dashboard, p: &Principal) -> Vec<crate::engine::FunctionView> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    while let Ok(page) = d.engine.list_functions(marker.as_deref(), Some(50), false) {
        all.extend(page.items);
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    all.retain(|f| d.may(p, "lambda:GetFunction", &d.function_arn(&f.version.name)));
    all
}

pub(super) async fn page(d: &Arc<Dashboard>, p: &Principal, query: &str) -> Response {
    if !d.may(p, "lambda:ListFunctions", "*") {
        return super::forbidden(p, "list functions (lambda:ListFunctions)");
    }
    let window = super::window_of(query);
    let now = crate::engine::now_ms();
    let functions = visible_functions(d, p);
    let rows = match d
        .engine
        .store()
        .rollups(None, window.resolution(), window.start_ms(now), now + window.resolution().millis())
        .await
    {
        Ok(rows) => rows,
        Err(e) => return super::failure(p, &format!("could not read the rollups: {e}")),
    };
    let names: HashMap<&str, ()> = functions.iter().map(|f| (f.version.name.as_str(), ())).collect();
    let rows: Vec<RollupRow> = rows.into_iter().filter(|r| names.contains_key(r.function.as_str())).collect();
    let mut per_function: HashMap<&str, Rollup> = HashMap::new();
    let mut total = Rollup::default();
    for r in &rows {
        per_function.entry(r.function.as_str()).or_default().merge(&r.rollup);
        total.merge(&r.rollup);
    }
    let buckets = by_bucket(window, now, &rows);
    let show_cost = d.may(p, "kumo:GetCost", "*");

    let mut body = String::new();
    let _ = write!(
        body,
        "<div class=\"titlebar\"><h1>Overview</h1><span class=\"muted\">last {}</span>{}</div>",
        window.label(),
        html::window_selector(PREFIX, window)
    );
    body.push_str("<div class=\"cards\">");
    body.push_str(&html::card("Functions", &html::number(functions.len() as u64), ""));
    body.push_str(&html::card(
        "Invocations",
        &html::number(total.invocations),
        &format!("{} throttled", html::number(total.throttles)),
    ));
    body.push_str(&html::card("Errors", &html::number(total.errors), &html::percent(total.error_rate())));
    body.push_str(&duration_card(&total));
    body.push_str(&html::card(
        "Cold starts",
        &html::percent(total.cold_start_rate()),
        &html::number(total.cold_starts),
    ));
    if show_cost {
        body.push_str(&html::card("Cost", &html::usd(total.cost_units), "after the free tier"));
    }
    body.push_str("</div><div class=\"charts\">");
    body.push_str(&traffic_chart(window, &buckets));
    body.push_str(&duration_chart(window, &buckets));
    if show_cost {
        body.push_str(&cost_chart("Cost", window, &buckets));
    }
    body.push_str("</div>");

    body.push_str("<h2>Functions</h2>");
    if functions.is_empty() {
        body.push_str(&html::notice("info", "No functions you may read yet. Deploy one with `kumo deploy`."));
    } else {
        body.push_str(
            "<table class=\"data\" id=\"functions\"><thead><tr><th>Function</th><th>Runtime</th><th class=\"num\">Memory</th>\
             <th class=\"num\">Invocations</th><th class=\"num\">Errors</th><th class=\"num\">Throttles</th>\
             <th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">Cold</th>",
        );
        if show_cost {
            body.push_str("<th class=\"num\">Cost</th>");
        }
        body.push_str("</tr></thead><tbody>");
        let empty = Rollup::default();
        for f in &functions {
            let name = &f.version.name;
            let r = per_function.get(name.as_str()).unwrap_or(&empty);
            let _ = write!(
                body,
                "<tr><td><a href=\"{PREFIX}/functions/{}\">{}</a></td><td>{}</td><td class=\"num\">{} MB</td>\
                 <td class=\"num\">{}</td><td class=\"num{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td>",
                url_enc(name),
                esc(name),
                esc(&f.version.config.runtime),
                f.version.config.memory_mb,
                html::number(r.invocations),
                if r.errors > 0 { " bad" } else { "" },
                html::number(r.errors),
                html::number(r.throttles),
                html::opt_duration(r.percentile_us(0.5)),
                html::opt_duration(r.percentile_us(0.99)),
                html::percent(r.cold_start_rate()),
            );
            if show_cost {
                let _ = write!(body, "<td class=\"num\">{}</td>", html::usd(r.cost_units));
            }
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table>");
    }

    body.push_str("<div class=\"columns\">");
    body.push_str("<section><h2>Async queue</h2>");
    if d.may(p, "kumo:ListEvents", "*") {
        let dead = d.engine.store().event_backlog().await.map(|b| b.dead).unwrap_or(0);
        body.push_str("<div class=\"cards\">");
        body.push_str(&html::card(
            "Queued",
            &html::number(d.engine.async_events_outstanding() as u64),
            "waiting or in flight",
        ));
        body.push_str(&html::card("Dead events", &html::number(dead), "kumo events dead"));
        body.push_str("</div>");
    } else {
        body.push_str(&html::notice("info", "Not shown: needs kumo:ListEvents."));
    }
    body.push_str("</section><section><h2>Budgets</h2>");
    if d.may(p, "kumo:ListBudgets", "*") {
        let budgets = d.engine.budgets();
        if budgets.is_empty() {
            body.push_str(&html::notice("info", "No budgets. `kumo budget create NAME --limit-usd N` adds one."));
        }
        for b in budgets {
            let limit = b.budget.limit_micro_usd.max(1);
            let pct = (b.spend_micro_usd as f64 / limit as f64 * 100.0).min(100.0);
            let scope = match &b.budget.scope {
                kumo_core::budget::BudgetScope::All => "all functions".to_string(),
                kumo_core::budget::BudgetScope::Function(f) => f.clone(),
            };
            let _ = write!(
                body,
                "<div class=\"budget\"><div class=\"row\"><strong>{}</strong><span class=\"muted\">{} · {}</span>\
                 <span class=\"spacer\"></span><span>{} of {}</span></div>\
                 <div class=\"bar{}\"><div class=\"fill w{}\"></div></div></div>",
                esc(&b.budget.name),
                esc(&scope),
                esc(&b.period),
                html::micro_usd(b.spend_micro_usd),
                html::micro_usd(b.budget.limit_micro_usd),
                if b.throttling {
                    " over"
                } else if pct >= 80.0 {
                    " warn"
                } else {
                    ""
                },
                (pct / 5.0).round() as u32 * 5,
            );
        }
    } else {
        body.push_str(&html::notice("info", "Not shown: needs kumo:ListBudgets."));
    }
    body.push_str("</section></div>");
    html_response(StatusCode::OK, html::page("Overview", html::Nav::Overview, Some(&p.viewer()), &body))
}
