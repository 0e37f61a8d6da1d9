//! The S3 event notification a function receives: `{"Records":[...]}`, one
//! record per event, in the shape S3 documents as event version 2.1.

use serde_json::{Map, Value, json};

use super::bucket_arn;
use crate::time::iso8601_millis;

/// What happened to one object, with everything its record reports.
#[derive(Debug, Clone)]
pub struct ObjectEvent {
    /// Without the `s3:` prefix: "ObjectCreated:Put", "ObjectRemoved:Delete", ...
    pub event_name: String,
    pub event_time_ms: i64,
    pub region: String,
    pub bucket: String,
    /// The raw key; [`record`] encodes it.
    pub key: String,
    /// Reported for ObjectCreated events.
    pub size: Option<u64>,
    /// Without quotes; reported for ObjectCreated events.
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: String,
    /// e.g. "AWS:AIDA..." or "AWS:AROA...:session".
    pub principal_id: String,
    pub source_ip: String,
    /// The `x-amz-request-id` of the request that caused the event.
    pub request_id: String,
    /// The `x-amz-id-2` of that request.
    pub host_id: String,
    pub configuration_id: String,
    pub owner_principal_id: String,
}

/// One element of `Records[]`.
///
/// The fields are AWS's; their order in the serialized JSON is not (the core's
/// serde_json sorts object keys). JSON objects are unordered and the Lambda
/// runtimes' event parsers look fields up by name, so only readers of raw
/// payloads would notice.
pub fn record(e: &ObjectEvent) -> Value {
    let mut object = Map::new();
    object.insert("key".into(), Value::String(encode_key(&e.key)));
    // A removal has no content to describe: S3 sends neither size nor ETag,
    // even when the object had them.
    if !e.event_name.starts_with("ObjectRemoved:") {
        if let Some(size) = e.size {
            object.insert("size".into(), Value::from(size));
        }
        if let Some(etag) = &e.etag {
            object.insert("eTag".into(), Value::String(etag.clone()));
        }
    }
    if let Some(version) = &e.version_id {
        object.insert("versionId".into(), Value::String(version.clone()));
    }
    object.insert("sequencer".into(), Value::String(e.sequencer.clone()));

    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": e.region,
        "eventTime": iso8601_millis(e.event_time_ms),
        "eventName": e.event_name,
        "userIdentity": { "principalId": e.principal_id },
        "requestParameters": { "sourceIPAddress": e.source_ip },
        "responseElements": {
            "x-amz-request-id": e.request_id,
            "x-amz-id-2": e.host_id,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": e.configuration_id,
            "bucket": {
                "name": e.bucket,
                "ownerIdentity": { "principalId": e.owner_principal_id },
                "arn": bucket_arn(&e.bucket),
            },
            "object": Value::Object(object),
        },
    })
}

/// `{"Records":[...]}`, serialized: the invocation payload.
pub fn payload(records: Vec<Value>) -> Vec<u8> {
    // Display on a Value cannot fail (its keys are strings by construction),
    // unlike serde_json::to_vec's general signature.
    json!({ "Records": records }).to_string().into_bytes()
}

/// The key as S3 writes it in event records.
///
/// S3 documents the key as "URL encoded", e.g. "red flower.jpg" becomes
/// "red+flower.jpg", and names `application/x-www-form-urlencoded` as the form.
/// Observed events add what the documentation leaves out: '/' is left as is
/// (keys arrive as "images/a.jpg", not "images%2Fa.jpg"), while ':' becomes
/// %3A, '=' %3D and '+' %2B. So: each UTF-8 byte of A-Z a-z 0-9 - _ . ~ and
/// '/' is kept, a space becomes '+', and every other byte becomes %XX with
/// uppercase hex. Handlers decode with `unquote_plus` or an equivalent, which
/// returns the raw key whichever of the unreserved characters were escaped.
pub fn encode_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(key.len());
    for &b in key.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0F)]));
            }
        }
    }
    out
}

/// A record's `sequencer`: uppercase hex, zero-padded to 18 digits like S3's
/// ("0C0F6F405D6ED209E1"). S3 tells consumers to compare sequencers as
/// strings after padding; with a fixed width no padding is needed and string
/// order is numeric order.
pub fn sequencer(counter: u64) -> String {
    format!("{counter:018X}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const FIXTURE: &str = include_str!("../../tests/fixtures/s3-put-event.json");

    fn fixture_record() -> Value {
        let doc: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
        doc["Records"][0].clone()
    }

    /// The values of the sample event in the Lambda developer guide.
    fn sample() -> ObjectEvent {
        ObjectEvent {
            event_name: "ObjectCreated:Put".into(),
            event_time_ms: 1_567_539_447_192,
            region: "us-east-2".into(),
            bucket: "lambda-artifacts-deafc19498e3f2df".into(),
            key: "b21b84d653bb07b05b1e6b33684dc11b".into(),
            size: Some(1_305_107),
            etag: Some("b21b84d653bb07b05b1e6b33684dc11b".into()),
            version_id: None,
            sequencer: "0C0F6F405D6ED209E1".into(),
            principal_id: "AWS:AIDAINPONIXQXHT3IKHL2".into(),
            source_ip: "205.255.255.255".into(),
            request_id: "D82B88E5F771F645".into(),
            host_id: "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo=".into(),
            configuration_id: "828aa6fc-f7b5-4305-8584-487c791949c1".into(),
            owner_principal_id: "A3I5XTEXAMAI3E".into(),
        }
    }

    /// Every path in a JSON value with the type found there: two values with
    /// the same set have the same shape, whatever their contents.
    fn shape(v: &Value, path: &str, out: &mut BTreeSet<(String, &'static str)>) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        out.insert((path.to_string(), kind));
        match v {
            Value::Object(map) => map.iter().for_each(|(k, child)| shape(child, &format!("{path}.{k}"), out)),
            Value::Array(items) => items.iter().for_each(|child| shape(child, &format!("{path}[]"), out)),
            _ => {}
        }
    }

    fn shape_of(v: &Value) -> BTreeSet<(String, &'static str)> {
        let mut out = BTreeSet::new();
        shape(v, "$", &mut out);
        out
    }

    #[test]
    fn record_has_the_shape_of_the_published_sample() {
        assert_eq!(shape_of(&record(&sample())), shape_of(&fixture_record()));
        // Not only the shape: fed the sample's values, we print the sample.
        assert_eq!(record(&sample()), fixture_record());
    }

    #[test]
    fn payload_wraps_records() {
        let bytes = payload(vec![record(&sample())]);
        let doc: Value = serde_json::from_slice(&bytes).expect("payload is JSON");
        assert_eq!(doc, serde_json::from_str::<Value>(FIXTURE).expect("fixture is JSON"));
        assert_eq!(payload(vec![]), br#"{"Records":[]}"#);
    }

    #[test]
    fn removals_carry_no_size_or_etag() {
        let e = ObjectEvent {
            event_name: "ObjectRemoved:Delete".into(),
            version_id: Some("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".into()),
            ..sample()
        };
        let object = &record(&e)["s3"]["object"];
        let keys: Vec<&str> = object.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys, ["key", "sequencer", "versionId"]);
        assert_eq!(object["versionId"], "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
    }

    #[test]
    fn record_encodes_the_key() {
        let e = ObjectEvent { key: "photos/red flower.jpg".into(), ..sample() };
        assert_eq!(record(&e)["s3"]["object"]["key"], "photos/red+flower.jpg");
    }

    #[test]
    fn encodes_keys_like_s3() {
        assert_eq!(encode_key("red flower.jpg"), "red+flower.jpg");
        assert_eq!(encode_key("a+b"), "a%2Bb");
        assert_eq!(encode_key("dir/sub/file.txt"), "dir/sub/file.txt");
        assert_eq!(encode_key("dt=2018-05-04/_SUCCESS"), "dt%3D2018-05-04/_SUCCESS");
        assert_eq!(encode_key("us-east-1:abc"), "us-east-1%3Aabc");
        assert_eq!(encode_key("é"), "%C3%A9");
        assert_eq!(encode_key("🌸"), "%F0%9F%8C%B8");
        assert_eq!(encode_key("100%"), "100%25");
        assert_eq!(encode_key("a~b_c-d.e"), "a~b_c-d.e");
        assert_eq!(encode_key("(1)&?#"), "%281%29%26%3F%23");
        assert_eq!(encode_key(""), "");
    }

    #[test]
    fn formats_event_time() {
        let at = |ms| record(&ObjectEvent { event_time_ms: ms, ..sample() })["eventTime"].clone();
        assert_eq!(at(1_567_539_447_192), "2019-09-03T19:37:27.192Z");
        // Leap day, and milliseconds padded to three digits.
        assert_eq!(at(1_709_251_199_007), "2024-02-29T23:59:59.007Z");
        assert_eq!(at(951_782_400_050), "2000-02-29T00:00:00.050Z");
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn sequencer_is_fixed_width_uppercase_hex() {
        assert_eq!(sequencer(0), "000000000000000000");
        assert_eq!(sequencer(0x0C0F_6F40_5D6E_D209), "000C0F6F405D6ED209");
        assert_eq!(sequencer(u64::MAX), "00FFFFFFFFFFFFFFFF");
    }

    /// Decodes what [`encode_key`] produces; for the round-trip property only.
    fn decode(s: &str) -> Option<String> {
        let mut bytes = Vec::new();
        let mut it = s.bytes();
        while let Some(b) = it.next() {
            match b {
                b'+' => bytes.push(b' '),
                b'%' => {
                    let hex = [it.next()?, it.next()?];
                    bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
                }
                _ => bytes.push(b),
            }
        }
        String::from_utf8(bytes).ok()
    }

    proptest! {
        #[test]
        fn sequencer_order_is_numeric_order(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(sequencer(a).cmp(&sequencer(b)), a.cmp(&b));
            prop_assert_eq!(sequencer(a).len(), 18);
        }

        /// Nothing is lost: form-decoding the encoded key gives the key back.
        /// The encoding is printable ASCII, and a '+' in it always stands for
        /// a space (a literal '+' is escaped), so decoders cannot confuse them.
        #[test]
        fn encoded_keys_decode_to_the_original(key in any::<String>()) {
            let encoded = encode_key(&key);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert_eq!(encoded.matches('+').count(), key.matches(' ').count());
            prop_assert_eq!(decode(&encoded), Some(key));
        }
    }
}
