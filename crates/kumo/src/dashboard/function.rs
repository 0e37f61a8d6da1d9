//! One function: configuration, triggers, versions and aliases, charts,
//! recent invocations and a live log tail.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kumo_core::rollup::{Rollup, Window};

use super::chart::{self, Chart, Kind, Series};
use super::html::{self, PREFIX, esc, url_enc};
use super::overview::{by_bucket, cost_chart, duration_card, duration_chart, labels, traffic_chart};
use super::{Dashboard, Principal, field, html_response, parse_form};
use crate::store::{LogQuery, MeteringRecord};

/// How many log lines the tail shows at first and returns per poll at most.
const TAIL_LINES: usize = 50;

/// The function, if it exists and the principal may read it; else the page to show.
pub(super) fn readable(d: &Dashboard, p: &Principal, name: &str) -> Result<crate::engine::FunctionView, Box<Response>> {
    if !d.may(p, "lambda:GetFunction", &d.function_arn(name)) {
        return Err(Box::new(super::forbidden(p, &format!("read the function {name} (lambda:GetFunction)"))));
    }
    d.engine.get_function(name, None).map_err(|_| Box::new(super::not_found(p)))
}

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(key), value);
}

/// The function's triggers: its URLs, schedules and bucket notifications that
/// target it, async invoke configs.
async fn triggers(d: &Dashboard, name: &str, arn: &str) -> String {
    let mut out = String::from("<dl class=\"kv\">");
    let urls = d.engine.list_function_urls(name, None, None).map(|p| p.items).unwrap_or_default();
    let urls: Vec<String> = urls
        .iter()
        .map(|u| {
            format!("<a href=\"{0}\">{0}</a> <span class=\"tag\">{1}</span>", esc(&u.url), u.config.auth_type.as_str())
        })
        .collect();
    kv(&mut out, "Function URL", &if urls.is_empty() { "–".to_string() } else { urls.join("<br>") });
    let mut schedules = Vec::new();
    for rule in d.schedules.list_rules(None).await {
        if rule.rule.targets.iter().any(|t| t.arn == arn || t.arn.starts_with(&format!("{arn}:"))) {
            let next = rule.next_fire_ms.map(|t| format!(", next {} UTC", html::time(t))).unwrap_or_default();
            schedules.push(format!(
                "{} <code>{}</code> <span class=\"muted\">{}{}</span>",
                esc(&rule.rule.name),
                esc(rule.rule.schedule_expression.as_deref().unwrap_or("event pattern")),
                esc(&rule.rule.state),
                esc(&next)
            ));
        }
    }
    kv(&mut out, "Schedules", &if schedules.is_empty() { "–".to_string() } else { schedules.join("<br>") });
    let buckets: Vec<String> = d
        .objects
        .as_ref()
        .map(|o| o.notifications_for(name))
        .unwrap_or_default()
        .iter()
        .map(|(bucket, n)| {
            let filter = match (&n.prefix, &n.suffix) {
                (None, None) => String::new(),
                (p, s) => format!(
                    " <span class=\"muted\">{}{}</span>",
                    p.as_deref().map(|p| format!("prefix {} ", esc(p))).unwrap_or_default(),
                    s.as_deref().map(|s| format!("suffix {}", esc(s))).unwrap_or_default()
                ),
            };
            format!("s3://{} <code>{}</code>{filter}", esc(bucket), esc(&n.events.join(", ")))
        })
        .collect();
    kv(&mut out, "S3 notifications", &if buckets.is_empty() { "–".to_string() } else { buckets.join("<br>") });
    let configs = d.engine.list_event_configs(name).unwrap_or_default();
    let configs: Vec<String> = configs
        .iter()
        .map(|c| {
            let q = c.function_arn.rsplit(':').next().unwrap_or("");
            format!(
                "<code>{}</code> retries {}, max age {}, on success {}, on failure {}",
                esc(q),
                c.config.maximum_retry_attempts.map_or("2".to_string(), |n| n.to_string()),
                c.config.maximum_event_age_s.map_or("6 h".to_string(), |s| format!("{s} s")),
                esc(c.config.on_success.as_deref().unwrap_or("–")),
                esc(c.config.on_failure.as_deref().unwrap_or("–"))
            )
        })
        .collect();
    kv(
        &mut out,
        "Event invoke config",
        &if configs.is_empty() { "defaults (2 retries, 6 h)".to_string() } else { configs.join("<br>") },
    );
    out.push_str("</dl>");
    out
}

pub(super) fn invocations_table(records: &[MeteringRecord], show_cost: bool) -> String {
    if records.is_empty() {
        return html::notice("info", "No invocations yet.");
    }
    let mut out = String::from(
        "<table class=\"data\"><thead><tr><th>Started (UTC)</th><th>Request id</th><th>Version</th>\
         <th class=\"num\">Duration</th><th class=\"num\">Billed</th><th class=\"num\">Memory</th><th class=\"num\">Max used</th>\
         <th class=\"num\">Init</th><th>Outcome</th>",
    );
    if show_cost {
        out.push_str("<th class=\"num\">Cost</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for r in records {
        let outcome = match r.error_type.as_deref() {
            Some(t) => format!("<span class=\"pill bad\">{}</span> {}", esc(&r.outcome), esc(t)),
            None if r.outcome == "success" => "<span class=\"pill ok\">success</span>".to_string(),
            None => format!("<span class=\"pill bad\">{}</span>", esc(&r.outcome)),
        };
        let cold = if r.cold { " <span class=\"pill cold\">cold</span>" } else { "" };
        let _ = write!(
            out,
            "<tr data-request-id=\"{0}\"><td>{1}</td><td><a class=\"mono\" href=\"{PREFIX}/invocations/{2}\">{0}</a></td><td>{3}</td>\
             <td class=\"num\">{4}</td><td class=\"num\">{5} ms</td><td class=\"num\">{6} MB</td><td class=\"num\">{7} MB</td>\
             <td class=\"num\">{8}</td><td>{9}{cold}</td>",
            esc(&r.request_id),
            html::time(r.start_ms),
            url_enc(&r.request_id),
            esc(&r.version),
            html::duration_us(r.duration_us),
            r.billed_ms,
            r.memory_mb,
            r.max_memory_used_mb,
            html::opt_duration(r.init_duration_us),
            outcome,
        );
        if show_cost {
            let _ = write!(out, "<td class=\"num\">{}</td>", html::usd(r.cost_units));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

pub(super) async fn recent(d: &Dashboard, name: &str) -> Vec<MeteringRecord> {
    d.engine.store().recent_invocations(name.to_string(), 20).await.unwrap_or_default()
}

/// The recent-invocations table alone (the Test page's script refreshes it).
pub(super) async fn recent_fragment(d: &Arc<Dashboard>, p: &Principal, name: &str) -> Response {
    if let Err(page) = readable(d, p, name) {
        return *page;
    }
    let show_cost = d.may(p, "kumo:GetCost", "*");
    html_response(StatusCode::OK, invocations_table(&recent(d, name).await, show_cost))
}

/// The live tail's box: the latest lines, and where the script polls for more.
pub(super) async fn tail_box(d: &Dashboard, p: &Principal, name: &str) -> String {
    let group = format!("/aws/lambda/{name}");
    if !d.may(p, "logs:FilterLogEvents", &d.log_group_arn(&group)) {
        return html::notice("info", "Logs not shown: needs logs:FilterLogEvents on the log group.");
    }
    let mut events = d
        .engine
        .store()
        .query_logs(LogQuery { group, limit: TAIL_LINES, newest_first: true, ..LogQuery::default() })
        .await
        .unwrap_or_default();
    events.reverse();
    let last = events.last().map_or(0, |e| e.id);
    let mut out = format!(
        "<pre class=\"tail\" id=\"tail\" data-tail=\"{PREFIX}/functions/{}/tail\" data-after=\"{last}\">",
        url_enc(name)
    );
    for e in &events {
        let _ =
            write!(out, "<span class=\"line\"><time>{}</time>{}</span>", html::time(e.timestamp_ms), esc(&e.message));
    }
    out.push_str("</pre><p class=\"muted small\" id=\"tail-status\">Live: new lines appear as they are written (needs JavaScript).</p>");
    out
}

/// New log lines after `after` (the live tail's poll), as JSON.
pub(super) async fn tail(d: &Arc<Dashboard>, p: &Principal, name: &str, query: &str) -> Response {
    let group = format!("/aws/lambda/{name}");
    if !d.may(p, "logs:FilterLogEvents", &d.log_group_arn(&group)) {
        return (StatusCode::FORBIDDEN, "not allowed").into_response();
    }
    let after: Option<i64> = field(&parse_form(query), "after").and_then(|v| v.parse().ok());
    let events = d
        .engine
        .store()
        .query_logs(LogQuery { group, after_id: after, limit: TAIL_LINES * 4, ..LogQuery::default() })
        .await
        .unwrap_or_default();
    let lines: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::json!({"id": e.id, "time": html::time(e.timestamp_ms), "message": e.message}))
        .collect();
    let mut resp = serde_json::json!({"events": lines}).to_string().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn init_chart(window: Window, buckets: &[(i64, Rollup)]) -> String {
    let ms = |v: u64| v as f64 / 1000.0;
    chart::render(&Chart {
        title: "Init duration (cold starts)",
        labels: labels(window, buckets),
        series: vec![
            Series {
                name: "mean".into(),
                points: buckets.iter().map(|(_, r)| r.mean_init_us().map(ms)).collect(),
                reference: false,
            },
            Series {
                name: "max".into(),
                points: buckets.iter().map(|(_, r)| (r.init_count > 0).then(|| ms(r.init_max_us))).collect(),
                reference: false,
            },
        ],
        kind: Kind::Line,
        format: chart::fmt_ms,
    })
}

fn memory_chart(window: Window, buckets: &[(i64, Rollup)], memory_size: u32) -> String {
    chart::render(&Chart {
        title: "Max memory used against memory size",
        labels: labels(window, buckets),
        series: vec![
            Series {
                name: "max memory used".into(),
                points: buckets
                    .iter()
                    .map(|(_, r)| (r.invocations > 0).then_some(r.max_memory_used_mb as f64))
                    .collect(),
                reference: false,
            },
            Series {
                name: format!("memory size ({memory_size} MB)"),
                points: buckets.iter().map(|_| Some(f64::from(memory_size))).collect(),
                reference: true,
            },
        ],
        kind: Kind::Line,
        format: chart::fmt_mb,
    })
}

pub(super) async fn page(d: &Arc<Dashboard>, p: &Principal, name: &str, query: &str) -> Response {
    let f = match readable(d, p, name) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let name = f.version.name.clone();
    let arn = d.function_arn(&name);
    let window = super::window_of(query);
    let now = crate::engine::now_ms();
    let store = d.engine.store();
    let rows = store
        .rollups(Some(name.clone()), window.resolution(), window.start_ms(now), now + window.resolution().millis())
        .await
        .unwrap_or_default();
    let buckets = by_bucket(window, now, &rows);
    let mut total = Rollup::default();
    for (_, r) in &buckets {
        total.merge(r);
    }
    let show_cost = d.may(p, "kumo:GetCost", "*");
    let c = &f.version.config;

    let mut body = String::new();
    let base = format!("{PREFIX}/functions/{}", url_enc(&name));
    let _ = write!(
        body,
        "<div class=\"titlebar\"><h1>{}</h1><a class=\"button\" href=\"{base}/test\">Test</a>{}</div>",
        esc(&name),
        html::window_selector(&base, window)
    );
    body.push_str("<div class=\"cards\">");
    body.push_str(&html::card("Invocations", &html::number(total.invocations), &format!("last {}", window.label())));
    body.push_str(&html::card("Errors", &html::number(total.errors), &html::percent(total.error_rate())));
    body.push_str(&html::card("Throttles", &html::number(total.throttles), ""));
    body.push_str(&duration_card(&total));
    body.push_str(&html::card(
        "Cold starts",
        &html::percent(total.cold_start_rate()),
        &html::opt_duration(total.mean_init_us()),
    ));
    body.push_str(&html::card(
        "Max memory used",
        &format!("{} MB", total.max_memory_used_mb),
        &format!("of {} MB", c.memory_mb),
    ));
    if show_cost {
        body.push_str(&html::card("Cost", &html::usd(total.cost_units), ""));
    }
    body.push_str("</div><div class=\"charts\">");
    body.push_str(&traffic_chart(window, &buckets));
    body.push_str(&duration_chart(window, &buckets));
    body.push_str(&init_chart(window, &buckets));
    body.push_str(&memory_chart(window, &buckets, c.memory_mb));
    if show_cost {
        let days = Window::Days30;
        let rows = store
            .rollups(Some(name.clone()), days.resolution(), days.start_ms(now), now + days.resolution().millis())
            .await
            .unwrap_or_default();
        body.push_str(&cost_chart("Cost per day (30 days)", days, &by_bucket(days, now, &rows)));
    }
    body.push_str("</div><div class=\"columns\"><section><h2>Configuration</h2><dl class=\"kv\">");
    kv(&mut body, "Runtime", &esc(&c.runtime));
    kv(&mut body, "Handler", &format!("<code>{}</code>", esc(&c.handler)));
    kv(&mut body, "Memory", &format!("{} MB", c.memory_mb));
    kv(&mut body, "Timeout", &format!("{} s", c.timeout_s));
    kv(&mut body, "Architecture", &esc(&c.architecture));
    kv(&mut body, "Ephemeral storage", &format!("{} MB", c.ephemeral_storage_mb));
    kv(&mut body, "Role", &format!("<code>{}</code>", esc(&c.role)));
    kv(&mut body, "Reserved concurrency", &f.reserved_concurrency.map_or("–".to_string(), |n| n.to_string()));
    kv(
        &mut body,
        "Code",
        &format!(
            "{} bytes, sha256 <code>{}</code>",
            html::number(f.version.code.size),
            esc(&f.version.code.sha256_b64)
        ),
    );
    kv(&mut body, "Last modified", &format!("{} UTC", html::time(f.version.last_modified_ms)));
    if !c.description.is_empty() {
        kv(&mut body, "Description", &esc(&c.description));
    }
    body.push_str("</dl></section><section><h2>Triggers</h2>");
    body.push_str(&triggers(d, &name, &arn).await);
    body.push_str("<h2>Versions and aliases</h2><dl class=\"kv\">");
    let versions = d.engine.list_versions(&name, None, None).map(|p| p.items).unwrap_or_default();
    let versions: Vec<String> =
        versions.iter().map(|v| format!("<code>{}</code>", esc(&v.version.version.to_string()))).collect();
    kv(&mut body, "Versions", &versions.join(" "));
    let aliases = d.engine.list_aliases(&name, None).unwrap_or_default();
    let aliases: Vec<String> = aliases
        .iter()
        .map(|(_, a)| {
            let extra: Vec<String> =
                a.additional_version_weights.iter().map(|(v, w)| format!("{v}: {:.0}%", w * 100.0)).collect();
            format!(
                "<code>{}</code> → {}{}",
                esc(&a.name),
                esc(&a.function_version.to_string()),
                if extra.is_empty() { String::new() } else { format!(" ({})", esc(&extra.join(", "))) }
            )
        })
        .collect();
    kv(&mut body, "Aliases", &if aliases.is_empty() { "–".to_string() } else { aliases.join("<br>") });
    body.push_str("</dl></section></div>");
    body.push_str("<h2>Recent invocations</h2><div id=\"recent\">");
    body.push_str(&invocations_table(&recent(d, &name).await, show_cost));
    body.push_str("</div><h2>Live log tail</h2>");
    body.push_str(&tail_box(d, p, &name).await);
    html_response(StatusCode::OK, html::page(&name, html::Nav::Overview, Some(&p.viewer()), &body))
}
