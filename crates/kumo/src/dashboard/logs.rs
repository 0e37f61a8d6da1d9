//! Log search across the log groups the principal may read, with the filter
//! patterns of FilterLogEvents (terms, phrases, exclusions, alternatives, JSON).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use kumo_core::logfilter::FilterPattern;

use super::html::{self, PREFIX, esc};
use super::{Dashboard, Principal, field, html_response, parse_form};
use crate::store::LogQuery;

/// The most matches a search shows.
const MAX_MATCHES: usize = 200;
/// The most candidate events read per group (the database narrows by the
/// pattern's required terms first).
const MAX_SCANNED: usize = 5_000;

pub(super) async fn page(d: &Arc<Dashboard>, p: &Principal, query: &str) -> Response {
    let fields = parse_form(query);
    let chosen = field(&fields, "group").unwrap_or("").to_string();
    let pattern_text = field(&fields, "pattern").unwrap_or("").to_string();
    let window = super::window_of(query);
    let now = crate::engine::now_ms();
    let groups: Vec<String> = d
        .engine
        .store()
        .log_groups(None)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.name)
        .filter(|g| d.may(p, "logs:FilterLogEvents", &d.log_group_arn(g)))
        .collect();
    let mut body = String::from("<div class=\"titlebar\"><h1>Logs</h1></div>");
    let _ = write!(
        body,
        "<form method=\"get\" action=\"{PREFIX}/logs\" class=\"search\"><select name=\"group\"><option value=\"\">All log groups</option>"
    );
    for g in &groups {
        let selected = if *g == chosen { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{0}\"{selected}>{0}</option>", esc(g));
    }
    let _ = write!(
        body,
        "</select><input name=\"pattern\" value=\"{}\" placeholder=\"filter pattern: ERROR -debug, ?a ?b, {{ $.latency > 100 }}\" spellcheck=\"false\">\
         <select name=\"window\">",
        esc(&pattern_text)
    );
    for w in kumo_core::rollup::Window::ALL {
        let selected = if w == window { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{}\"{selected}>last {}</option>", w.as_str(), w.label());
    }
    body.push_str("</select><button type=\"submit\">Search</button></form>");
    if groups.is_empty() {
        body.push_str(&html::notice("info", "No log groups you may read (logs:FilterLogEvents)."));
        return html_response(StatusCode::OK, html::page("Logs", html::Nav::Logs, Some(&p.viewer()), &body));
    }
    let pattern = match FilterPattern::parse(&pattern_text) {
        Ok(pattern) => pattern,
        Err(e) => {
            body.push_str(&html::notice("error", &format!("Invalid filter pattern: {}", e.0)));
            return html_response(
                StatusCode::BAD_REQUEST,
                html::page("Logs", html::Nav::Logs, Some(&p.viewer()), &body),
            );
        }
    };
    let searched: Vec<&String> =
        if chosen.is_empty() { groups.iter().collect() } else { groups.iter().filter(|g| **g == chosen).collect() };
    let start = now - window.buckets() * window.resolution().millis();
    let mut matches = Vec::new();
    for g in searched {
        let events = d
            .engine
            .store()
            .query_logs(LogQuery {
                group: g.clone(),
                start_ms: Some(start),
                filter_terms: pattern.required_terms(),
                limit: MAX_SCANNED,
                newest_first: true,
                ..LogQuery::default()
            })
            .await
            .unwrap_or_default();
        matches.extend(
            events.into_iter().filter(|e| pattern.matches(&e.message)).take(MAX_MATCHES).map(|e| (g.clone(), e)),
        );
    }
    matches.sort_by(|a, b| b.1.timestamp_ms.cmp(&a.1.timestamp_ms).then(b.1.id.cmp(&a.1.id)));
    matches.truncate(MAX_MATCHES);
    let _ =
        write!(body, "<p class=\"muted\">{} matching events (newest first, at most {MAX_MATCHES}).</p>", matches.len());
    body.push_str(
        "<table class=\"data logs\"><thead><tr><th>Time (UTC)</th><th>Group</th><th>Message</th></tr></thead><tbody>",
    );
    for (g, e) in &matches {
        let _ = write!(
            body,
            "<tr><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}<br><span class=\"muted small\">{}</span></td><td><pre>{}</pre></td></tr>",
            html::time(e.timestamp_ms),
            esc(g),
            esc(&e.stream),
            esc(&e.message)
        );
    }
    body.push_str("</tbody></table>");
    html_response(StatusCode::OK, html::page("Logs", html::Nav::Logs, Some(&p.viewer()), &body))
}
