//! One request id: its attempts with their REPORT fields and cost, its log
//! lines, its async retries and destinations, and its lineage.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;

use super::html::{self, PREFIX, esc, url_enc};
use super::{Dashboard, Principal, html_response};
use crate::store::{LogQuery, MeteringRecord, StoredLogEvent};

/// The log lines of one attempt: its environment's stream from the START line
/// naming the request id to its REPORT line, found near the attempt's start.
async fn attempt_lines(d: &Dashboard, r: &MeteringRecord) -> Vec<StoredLogEvent> {
    let group = format!("/aws/lambda/{}", r.function);
    let init_ms = r.init_duration_us.unwrap_or(0) as i64 / 1000;
    let end = r.start_ms + (r.duration_us / 1000) as i64 + 2_000;
    let events = d
        .engine
        .store()
        .query_logs(LogQuery {
            group,
            start_ms: Some(r.start_ms - init_ms - 2_000),
            end_ms: Some(end),
            limit: 2_000,
            ..LogQuery::default()
        })
        .await
        .unwrap_or_default();
    let start_marker = format!("START RequestId: {}", r.request_id);
    let report_marker = format!("REPORT RequestId: {}", r.request_id);
    let Some(start) = events.iter().position(|e| e.message.starts_with(&start_marker)) else {
        return Vec::new();
    };
    let stream = events[start].stream.clone();
    let mut out = Vec::new();
    for e in events[start..].iter().filter(|e| e.stream == stream) {
        out.push(e.clone());
        if e.message.starts_with(&report_marker) {
            break;
        }
    }
    out
}

fn lineage_list(records: &[MeteringRecord]) -> String {
    if records.is_empty() {
        return "–".to_string();
    }
    records
        .iter()
        .map(|r| {
            format!(
                "<a class=\"mono\" href=\"{PREFIX}/invocations/{}\">{}</a> <span class=\"muted\">{}</span>",
                url_enc(&r.request_id),
                esc(&r.request_id),
                esc(&r.function)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

pub(super) async fn page(d: &Arc<Dashboard>, p: &Principal, id: &str) -> Response {
    let store = d.engine.store();
    let mut attempts = store.invocation_attempts(id.to_string()).await.unwrap_or_default();
    if attempts.is_empty() {
        // It may have just finished: its record can still be in the writer's queue.
        let _ = store.flush().await;
        attempts = store.invocation_attempts(id.to_string()).await.unwrap_or_default();
    }
    let Some(first) = attempts.first().cloned() else {
        return super::not_found(p);
    };
    if !d.may(p, "lambda:GetFunction", &d.function_arn(&first.function)) {
        return super::forbidden(p, &format!("read the function {} (lambda:GetFunction)", first.function));
    }
    let show_cost = d.may(p, "kumo:GetCost", "*");
    let show_logs = d.may(p, "logs:FilterLogEvents", &d.log_group_arn(&format!("/aws/lambda/{}", first.function)));
    let mut body = format!(
        "<div class=\"titlebar\"><h1>Invocation <span class=\"mono\">{}</span></h1></div>\
         <p>Function <a href=\"{PREFIX}/functions/{}\">{}</a>, {} attempt{}.</p>",
        esc(id),
        url_enc(&first.function),
        esc(&first.function),
        attempts.len(),
        if attempts.len() == 1 { "" } else { "s (retried asynchronously)" }
    );
    for (i, r) in attempts.iter().enumerate() {
        let _ = write!(body, "<section class=\"attempt\"><h2>Attempt {}</h2><div class=\"cards\">", i + 1);
        body.push_str(&html::card(
            "Duration",
            &html::duration_us(r.duration_us),
            &format!("billed {} ms", r.billed_ms),
        ));
        body.push_str(&html::card(
            "Memory",
            &format!("{} MB", r.max_memory_used_mb),
            &format!("max used of {} MB (this invocation's own peak {} MB)", r.memory_mb, r.invocation_peak_mb),
        ));
        body.push_str(&html::card(
            if r.cold { "Cold start" } else { "Warm start" },
            &html::opt_duration(r.init_duration_us),
            r.cold_start_cause.as_deref().map_or("reused environment", |c| c),
        ));
        body.push_str(&html::card("Outcome", &r.outcome, r.error_type.as_deref().unwrap_or("")));
        if show_cost {
            body.push_str(&html::card("Cost", &html::usd(r.cost_units), "charged as it ended"));
        }
        let _ = write!(
            body,
            "</div><p class=\"muted small\">Started {} UTC · version {} · {} · {} MB ephemeral storage</p>",
            html::time(r.start_ms),
            esc(&r.version),
            esc(&r.architecture),
            r.ephemeral_storage_mb
        );
        if show_logs {
            let lines = attempt_lines(d, r).await;
            if lines.is_empty() {
                body.push_str(&html::notice("info", "No log lines found (they may have expired or been capped)."));
            } else {
                body.push_str("<pre class=\"tail\">");
                for e in lines {
                    let class = if e.message.starts_with("REPORT ") { "line report" } else { "line" };
                    let _ = write!(
                        body,
                        "<span class=\"{class}\"><time>{}</time>{}</span>",
                        html::time(e.timestamp_ms),
                        esc(&e.message)
                    );
                }
                body.push_str("</pre>");
            }
        }
        body.push_str("</section>");
    }
    body.push_str("<div class=\"columns\"><section><h2>Delivery</h2><dl class=\"kv\">");
    let configs = d.engine.list_event_configs(&first.function).unwrap_or_default();
    let destinations: Vec<String> = configs
        .iter()
        .filter_map(|c| {
            let on = |label: &str, v: &Option<String>| v.as_ref().map(|v| format!("{label} → <code>{}</code>", esc(v)));
            let both: Vec<String> = [on("on success", &c.config.on_success), on("on failure", &c.config.on_failure)]
                .into_iter()
                .flatten()
                .collect();
            (!both.is_empty()).then(|| both.join(", "))
        })
        .collect();
    let _ = write!(
        body,
        "<dt>Retries</dt><dd>{}</dd><dt>Destinations (if invoked asynchronously)</dt><dd>{}</dd></dl></section>",
        attempts.len().saturating_sub(1),
        if destinations.is_empty() { "none configured".to_string() } else { destinations.join("<br>") }
    );
    body.push_str("<section><h2>Lineage</h2><dl class=\"kv\">");
    match &first.lineage_origin {
        Some(origin) => {
            let parents = if first.lineage_depth > 1 {
                store.lineage_invocations(origin.clone(), first.lineage_depth - 1, 20).await.unwrap_or_default()
            } else {
                Vec::new()
            };
            let children =
                store.lineage_invocations(origin.clone(), first.lineage_depth + 1, 20).await.unwrap_or_default();
            let _ = write!(
                body,
                "<dt>Chain</dt><dd><code>{}</code>, invocation {} of its chain</dd><dt>Triggered by</dt><dd>{}</dd><dt>Triggered</dt><dd>{}</dd>",
                esc(origin),
                first.lineage_depth,
                if first.lineage_depth <= 1 {
                    "a caller outside Kumo's functions".to_string()
                } else {
                    lineage_list(&parents)
                },
                lineage_list(&children)
            );
        }
        None => body.push_str("<dt>Chain</dt><dd>not recorded (invoked before lineage was stored)</dd>"),
    }
    body.push_str("</dl></section></div>");
    html_response(StatusCode::OK, html::page("Invocation", html::Nav::None, Some(&p.viewer()), &body))
}
