//! The Test page: invoke a function with a payload (or a sample event) and
//! see its result, logs and cost. A plain form POST; the script submits it in
//! place and refreshes the invocation list.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use kumo_core::invoke::InvocationType;

use super::function::{invocations_table, readable, recent, tail_box};
use super::html::{self, PREFIX, esc, url_enc};
use super::session::{csrf_field, csrf_ok};
use super::{Dashboard, Principal, field, html_response};
use crate::cli::event::{SAMPLE_KINDS, sample_event};
use crate::engine::InvokeRequest;

fn sample(d: &Dashboard, kind: &str) -> Option<String> {
    let scope = &d.engine.config().scope;
    sample_event(kind, &scope.region, &scope.account, crate::engine::now_ms())
}

async fn render(d: &Dashboard, p: &Principal, name: &str, payload: &str, result: &str, status: StatusCode) -> Response {
    let base = format!("{PREFIX}/functions/{}", url_enc(name));
    let mut body = format!(
        "<div class=\"titlebar\"><h1>Test <a href=\"{base}\">{}</a></h1></div>\
         <form method=\"post\" action=\"{base}/test\" id=\"test-form\" class=\"stack\">{}\
         <label>Payload (JSON)<textarea name=\"payload\" id=\"payload\" rows=\"10\" spellcheck=\"false\">{}</textarea></label>\
         <div class=\"row\"><select name=\"sample\" id=\"sample\">",
        esc(name),
        csrf_field(p),
        esc(payload)
    );
    for kind in SAMPLE_KINDS {
        let event = sample(d, kind).unwrap_or_default();
        let _ = write!(body, "<option value=\"{kind}\" data-event=\"{}\">{kind} event</option>", esc(&event));
    }
    body.push_str(
        "</select><button type=\"submit\" name=\"action\" value=\"sample\" class=\"secondary\" id=\"load-sample\">Load sample</button>\
         <span class=\"spacer\"></span><button type=\"submit\" name=\"action\" value=\"invoke\" id=\"invoke\">Invoke</button></div></form>",
    );
    let _ = write!(body, "<div id=\"result\">{result}</div>");
    let show_cost = d.may(p, "kumo:GetCost", "*");
    let _ = write!(
        body,
        "<h2>Recent invocations</h2><div id=\"recent\" data-src=\"{base}/invocations\">{}</div><h2>Live log tail</h2>{}",
        invocations_table(&recent(d, name).await, show_cost),
        tail_box(d, p, name).await
    );
    html_response(status, html::page(&format!("Test {name}"), html::Nav::Overview, Some(&p.viewer()), &body))
}

pub(super) async fn page(d: &Arc<Dashboard>, p: &Principal, name: &str, _query: &str) -> Response {
    let f = match readable(d, p, name) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    render(d, p, &f.version.name, "{}", "", StatusCode::OK).await
}

pub(super) async fn invoke(
    d: &Arc<Dashboard>,
    p: &Principal,
    name: &str,
    fields: &[(String, String)],
    fragment: bool,
) -> Response {
    let f = match readable(d, p, name) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let name = f.version.name.clone();
    if !csrf_ok(p, fields) {
        return super::forbidden(p, "submit this form without its anti-forgery token");
    }
    if field(fields, "action") == Some("sample") {
        let payload = sample(d, field(fields, "sample").unwrap_or("")).unwrap_or_else(|| "{}".to_string());
        return render(d, p, &name, &payload, "", StatusCode::OK).await;
    }
    let payload = field(fields, "payload").unwrap_or("").trim().to_string();
    let payload = if payload.is_empty() { "{}".to_string() } else { payload };
    let (status, result) = if d.may(p, "lambda:InvokeFunction", &d.function_arn(&name)) {
        (StatusCode::OK, run(d, p, &name, &payload).await)
    } else {
        (
            StatusCode::FORBIDDEN,
            html::notice(
                "error",
                &format!("{} is not allowed to invoke {name} (lambda:InvokeFunction).", p.identity.arn),
            ),
        )
    };
    if fragment {
        return html_response(status, result);
    }
    render(d, p, &name, &payload, &result, status).await
}

/// Invokes synchronously, as the API's Invoke does, and renders the outcome.
async fn run(d: &Dashboard, p: &Principal, name: &str, payload: &str) -> String {
    let req = InvokeRequest {
        function_name: name.to_string(),
        qualifier: None,
        invocation_type: InvocationType::RequestResponse,
        payload: bytes::Bytes::from(payload.to_string()),
        log_tail: true,
        client_context: None,
        caller_lineage: None,
        request_id: None,
        stream: None,
    };
    let resp = match d.engine.invoke(req).await {
        Ok(resp) => resp,
        Err(e) => {
            return format!(
                "<section class=\"result bad\"><h2>Refused</h2>{}</section>",
                html::notice("error", &format!("{}: {}", e.code.wire_name(), e.message))
            );
        }
    };
    let store = d.engine.store();
    let _ = store.flush().await;
    let record = store.invocation_attempts(resp.request_id.clone()).await.unwrap_or_default().pop();
    let pretty = serde_json::from_slice::<serde_json::Value>(&resp.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&resp.payload).into_owned());
    let log = resp
        .log_result
        .as_deref()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (class, heading) = match resp.function_error {
        Some(kind) => ("bad", format!("Function error ({kind})")),
        None => ("ok", "Succeeded".to_string()),
    };
    let mut out = format!(
        "<section class=\"result {class}\" data-request-id=\"{0}\"><h2>{1}</h2><p>Request <a class=\"mono\" href=\"{PREFIX}/invocations/{2}\">{0}</a></p><div class=\"cards\">",
        esc(&resp.request_id),
        esc(&heading),
        url_enc(&resp.request_id)
    );
    if let Some(r) = &record {
        out.push_str(&html::card("Duration", &html::duration_us(r.duration_us), &format!("billed {} ms", r.billed_ms)));
        out.push_str(&html::card(
            "Max memory used",
            &format!("{} MB", r.max_memory_used_mb),
            &format!("of {} MB", r.memory_mb),
        ));
        out.push_str(&html::card(
            if r.cold { "Cold start" } else { "Warm start" },
            &html::opt_duration(r.init_duration_us),
            "",
        ));
        if d.may(p, "kumo:GetCost", "*") {
            out.push_str(&html::card("Cost", &html::usd(r.cost_units), "after the free tier"));
        }
    }
    let _ = write!(
        out,
        "</div><h3>Result</h3><pre class=\"payload\">{}</pre><h3>Log</h3><pre class=\"tail\">{}</pre></section>",
        esc(&pretty),
        esc(&log)
    );
    out
}
