#!/usr/bin/env python3
"""Writes crates/kumo-core/tests/fixtures/sigv4/botocore.json: requests signed by
botocore (SigV4Auth, S3SigV4Auth, SigV4QueryAuth, S3SigV4QueryAuth) with fixed
credentials at a fixed time, with the canonical request, string to sign and
signature botocore computed. kumo-core's tests verify each with its own code.

Run from anywhere: python3 scripts/sigv4-vectors.py
"""

import datetime
import hashlib
import json
import pathlib
from unittest import mock
from urllib.parse import urlsplit

import botocore
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEBAaCXVzLWVhc3QtMSJHMEUCIQ+/token=="
SIGNED_AT = datetime.datetime(2015, 8, 30, 12, 36, 0)
OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/kumo-core/tests/fixtures/sigv4/botocore.json"

LAMBDA = "https://lambda.us-east-1.amazonaws.com"
S3 = "https://s3.us-east-1.amazonaws.com"

# name, signer, service, region, method, url, headers (list of pairs), body, options
CASES = [
    ("invoke-qualified-colon", SigV4Auth, "lambda", "us-east-1", "POST",
     LAMBDA + "/2015-03-31/functions/my-fn%3Aprod/invocations",
     [("Content-Type", "application/json"), ("X-Amz-Invocation-Type", "RequestResponse")], '{"k": "v"}', {}),
    ("non-ascii-function-name", SigV4Auth, "lambda", "us-east-1", "GET",
     LAMBDA + "/2015-03-31/functions/caf%C3%A9/configuration?Qualifier=%24LATEST", [], "", {}),
    ("query-special-characters", SigV4Auth, "lambda", "us-east-1", "GET",
     LAMBDA + "/2015-03-31/functions/?MaxItems=10&Marker=a%2Fb%20c%3D%26&FunctionVersion=ALL&Empty=", [], "", {}),
    ("repeated-query-keys", SigV4Auth, "lambda", "us-east-1", "GET",
     LAMBDA + "/2018-10-31/layers?tag=b&tag=a&Tag=c&tag=a%2B", [], "", {}),
    ("session-token", SigV4Auth, "lambda", "eu-west-1", "DELETE",
     "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/fn/aliases/live", [], "", {"token": True}),
    ("header-whitespace-and-repeats", SigV4Auth, "lambda", "us-east-1", "PUT",
     LAMBDA + "/2015-03-31/functions/fn/concurrency",
     [("X-Custom", "  a   b  "), ("x-custom", "second\tvalue"), ("Content-Type", "application/json")],
     '{"ReservedConcurrentExecutions": 5}', {}),
    ("date-header-instead-of-x-amz-date", SigV4Auth, "lambda", "us-east-1", "GET",
     LAMBDA + "/2015-03-31/functions/", [("Date", "placeholder")], "", {}),
    ("path-space-tilde-dots", SigV4Auth, "lambda", "us-east-1", "GET",
     LAMBDA + "/2015-03-31/functions/a%20b~c/../d%2Fe//policy/", [], "", {}),
    ("unsigned-payload", SigV4Auth, "lambda", "us-east-1", "POST",
     LAMBDA + "/2015-03-31/functions/fn/invocations", [], "not hashed", {"unsigned_payload": True}),
    ("logs-json", SigV4Auth, "logs", "eu-central-1", "POST", "https://logs.eu-central-1.amazonaws.com/",
     [("X-Amz-Target", "Logs_20140328.PutLogEvents"), ("Content-Type", "application/x-amz-json-1.1")],
     '{"logGroupName": "/aws/lambda/caf\u00e9", "logEvents": []}', {}),
    ("s3-put-object", S3SigV4Auth, "s3", "us-east-1", "PUT", S3 + "/bucket/my%20key%3A1.txt",
     [("Content-Type", "text/plain")], "hello s3", {}),
    ("s3-list-objects", S3SigV4Auth, "s3", "us-east-1", "GET", S3 + "/bucket?list-type=2&prefix=a%2Fb", [], "", {}),
    ("s3-path-not-normalised", S3SigV4Auth, "s3", "us-east-1", "GET", S3 + "/bucket/a//b/./c", [], "",
     {"token": True}),
    ("presigned-lambda", SigV4QueryAuth, "lambda", "us-east-1", "GET",
     LAMBDA + "/2015-03-31/functions/my-fn/configuration?Qualifier=prod", [], "", {"expires": 300}),
    ("presigned-lambda-token", SigV4QueryAuth, "lambda", "us-east-1", "GET",
     LAMBDA + "/2015-03-31/functions/my-fn%3A1/policy", [], "", {"expires": 604800, "token": True}),
    ("presigned-s3", S3SigV4QueryAuth, "s3", "us-east-1", "GET", S3 + "/bucket/key%20x?versionId=3",
     [], "", {"expires": 3600, "token": True}),
]


def sign(name, signer_class, service, region, method, url, headers, body, options):
    creds = Credentials(ACCESS_KEY_ID, SECRET, TOKEN if options.get("token") else None)
    request = AWSRequest(method=method, url=url, data=body.encode("utf-8"))
    for header, value in headers:
        request.headers[header] = value
    if options.get("unsigned_payload"):
        request.context["payload_signing_enabled"] = False
    if "expires" in options:
        signer = signer_class(creds, service, region, expires=options["expires"])
    else:
        signer = signer_class(creds, service, region)

    captured = {}
    real_canonical, real_sts = signer.canonical_request, signer.string_to_sign

    def canonical_request(req):
        captured["canonical_request"] = real_canonical(req)
        return captured["canonical_request"]

    def string_to_sign(req, creq):
        captured["string_to_sign"] = real_sts(req, creq)
        return captured["string_to_sign"]

    signer.canonical_request, signer.string_to_sign = canonical_request, string_to_sign
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        signer.add_auth(request)

    parts = urlsplit(request.url)
    sent_headers = [[k, v] for k, v in request.headers.items()]
    if not any(k.lower() == "host" for k, _ in sent_headers):
        sent_headers.append(["host", parts.netloc])
    body_bytes = request.body or b""
    if isinstance(body_bytes, str):
        body_bytes = body_bytes.encode("utf-8")
    return {
        "name": name,
        "signer": signer_class.__name__,
        "service": service,
        "region": region,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET,
        "session_token": creds.token,
        "signed_at": SIGNED_AT.strftime("%Y%m%dT%H%M%SZ"),
        "method": method,
        "path": parts.path,
        "query": parts.query,
        "headers": sent_headers,
        "body": body_bytes.decode("utf-8"),
        "body_sha256": hashlib.sha256(body_bytes).hexdigest(),
        "canonical_request": captured["canonical_request"],
        "string_to_sign": captured["string_to_sign"],
        "authorization": request.headers.get("Authorization"),
        "url": request.url,
    }


def main():
    vectors = [sign(*case) for case in CASES]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    document = {"generator": "scripts/sigv4-vectors.py", "botocore": botocore.__version__, "vectors": vectors}
    OUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {OUT}")


if __name__ == "__main__":
    main()
