#!/usr/bin/env python3
"""End-to-end tests for Kumo's Python and Node.js Lambda bootstraps.

Runs each bootstrap as a subprocess against a fake Lambda Runtime API
(http.server on 127.0.0.1, ephemeral port) using sample handlers written to
temporary directories.  Standard library only.

    python3 runtimes/test_bootstraps.py [--python PY] [--node NODE] [--skip-node]

Exits 0 when every check passes.  Node tests run only if `node` is on PATH.
"""
import argparse
import json
import os
import queue
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
PY_BOOTSTRAP = os.path.join(HERE, "python", "bootstrap.py")
NODE_BOOTSTRAP = os.path.join(HERE, "node", "bootstrap.js")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:kumo-test"
PREFIX = "/2018-06-01/runtime"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

# ---------------------------------------------------------------------------
# Tiny check framework.

PASSED = 0
FAILED = []


def check(cond, what, detail=None):
    global PASSED
    if cond:
        PASSED += 1
    else:
        FAILED.append(what)
        print("    FAIL: %s%s" % (what, "" if detail is None else "\n          got: %r" % (detail,)))
    return cond


def eq(actual, expected, what):
    return check(actual == expected, "%s (expected %r)" % (what, expected), actual)


# ---------------------------------------------------------------------------
# Child output capture.  The fake server snapshots stdout when a POST arrives:
# the bootstrap writes to the pipe *before* sending the POST, so anything it
# printed first is already readable then (no race with the reader thread,
# since both read under the same lock).

class OutputCapture:
    def __init__(self, fd):
        self.fd = fd
        os.set_blocking(fd, False)
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.eof = False
        threading.Thread(target=self._pump, daemon=True).start()

    def _drain(self):
        while not self.eof:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                return
            self.buf += chunk

    def _pump(self):
        while not self.eof:
            try:
                select.select([self.fd], [], [], 0.05)
            except (OSError, ValueError):
                return
            with self.lock:
                self._drain()

    def text(self):
        with self.lock:
            self._drain()
            return self.buf.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Fake Runtime API.

class Record:
    def __init__(self, kind, request_id, headers, body, stdout, turnaround):
        self.kind, self.request_id, self.headers = kind, request_id, headers
        self.body, self.stdout, self.turnaround = body, stdout, turnaround

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Record(%s, %s, %r)" % (self.kind, self.request_id, self.body[:300])


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # killed children reset sockets
            super().handle_error(request, client_address)


class FakeRuntimeAPI:
    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.connections = 0
        self.capture = None
        self.closed = False
        self.drop_after = set()  # request ids after whose result we close the socket
        self.sent_at = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self):
                super().setup()
                api.connections += 1

            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=()):
                head = ["HTTP/1.1 %d X" % status, "Content-Length: %d" % len(body)]
                head += ["%s: %s" % kv for kv in headers]
                # One write: headers and body in the same segment.
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

            def do_GET(self):
                if self.path != PREFIX + "/invocation/next":
                    return self._send(404, b"{}")
                while True:
                    try:
                        rid, body, headers = api.events.get(timeout=0.2)
                        break
                    except queue.Empty:
                        if api.closed:
                            self.close_connection = True
                            return
                self._send(200, body, headers.items())
                api.sent_at[rid] = time.perf_counter()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                stdout = api.capture.text() if api.capture else ""
                m = re.fullmatch(PREFIX + r"/(?:invocation/([^/]+)/(response|error)|init/error)", self.path)
                if not m:
                    return self._send(404, b"{}")
                rid, kind = m.group(1) or "", m.group(2) or "init_error"
                self._send(202, b'{"status":"OK"}')
                if rid in api.drop_after:
                    self.close_connection = True  # close without telling the client
                sent = api.sent_at.get(rid)
                api.results.put(Record(kind, rid, dict(self.headers.items()), body, stdout,
                                       None if sent is None else now - sent))

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Running a bootstrap.

class Runtime:
    def __init__(self, cmd, task_root, handler, extra_env=None):
        self.api = FakeRuntimeAPI()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": task_root,
            "AWS_LAMBDA_FUNCTION_NAME": "kumo-test",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/kumo-test",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]abcdef",
            "AWS_REGION": "us-east-1",
        }
        env.update(extra_env or {})
        self.proc = subprocess.Popen(cmd, cwd=task_root, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = OutputCapture(self.proc.stdout.fileno())
        self.err = OutputCapture(self.proc.stderr.fileno())
        self.api.capture = self.out

    def _result(self, timeout):
        try:
            return self.api.results.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no result within %ss; exit=%r\nstdout:\n%s\nstderr:\n%s" % (
                timeout, self.proc.poll(), self.out.text(), self.err.text()))

    def invoke(self, event=None, raw=None, headers=None, drop_connection=False, timeout=15):
        rid = str(uuid.uuid4())
        body = raw if raw is not None else json.dumps(event).encode()
        h = {
            "Lambda-Runtime-Aws-Request-Id": rid,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30000),
            "Lambda-Runtime-Invoked-Function-Arn": ARN,
        }
        h.update(headers or {})
        if drop_connection:
            self.api.drop_after.add(rid)
        self.api.events.put((rid, body, h))
        rec = self._result(timeout)
        if rec.request_id != rid:
            raise AssertionError("result for %r while waiting for %r" % (rec, rid))
        return rec

    def init_error(self, timeout=15):
        rec = self._result(timeout)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = "still running"
        return rec, code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.api.close()
        self.proc.stdout.close()
        self.proc.stderr.close()


def write_files(root, files):
    for name, content in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(content).lstrip("\n"))


def lines_matching(text, pattern):
    return [line for line in text.split("\n") if re.fullmatch(pattern, line, re.S)]


def run_test(name, fn, *args):
    print("  %s" % name)
    try:
        fn(*args)
    except Exception:
        FAILED.append(name)
        print("    FAIL: exception\n" + textwrap.indent(traceback.format_exc(), "      "))


def latency(rt, label):
    rt.invoke({"op": "echo-warmup"})
    rtts, turns = [], []
    for i in range(200):
        t0 = time.perf_counter()
        rec = rt.invoke({"i": i})
        rtts.append(time.perf_counter() - t0)
        turns.append(rec.turnaround)
    print("    latency %s: median round trip %.3f ms (p90 %.3f ms); bootstrap turnaround "
          "(/next sent -> /response received) median %.3f ms" % (
              label, statistics.median(rtts) * 1e3, sorted(rtts)[179] * 1e3,
              statistics.median(turns) * 1e3))


# ---------------------------------------------------------------------------
# Python bootstrap.

PY_FILES = {
    "app.py": '''
        import logging, os, sys
        COUNT = 0
        log = logging.getLogger("app")
        print("init-print from app")

        def handler(event, context):
            global COUNT
            op = event.get("op") if isinstance(event, dict) else None
            if op is None:
                return event
            if op == "count":
                COUNT += 1
                return {"count": COUNT, "pid": os.getpid()}
            if op == "context":
                ident, cc = context.identity, context.client_context
                return {
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "invoked_function_arn": context.invoked_function_arn,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "aws_request_id": context.aws_request_id,
                    "log_group_name": context.log_group_name,
                    "log_stream_name": context.log_stream_name,
                    "remaining": context.get_remaining_time_in_millis(),
                    "remaining_is_int": isinstance(context.get_remaining_time_in_millis(), int),
                    "trace": os.environ.get("_X_AMZN_TRACE_ID"),
                    "identity_id": ident and ident.cognito_identity_id,
                    "identity_pool": ident and ident.cognito_identity_pool_id,
                    "cc": None if cc is None else [cc.custom, cc.env, cc.client and cc.client.installation_id],
                }
            if op == "raise":
                raise ValueError("boom")
            if op == "print":
                print("PRINT-" + event["marker"])
                print("to-stderr-" + event["marker"], file=sys.stderr)
                return "printed"
            if op == "log":
                log.warning("multi\\nline %s", event["marker"])
                log.info("hidden-info")
                logging.debug("debug-" + event["marker"])
                try:
                    1 / 0
                except ZeroDivisionError:
                    log.exception("caught-" + event["marker"])
                return "logged"
            if op == "unserializable":
                return {1, 2}
            if op == "decimal":
                from decimal import Decimal
                return {"int": Decimal("3"), "float": Decimal("1.5")}
            if op == "none":
                return None
            if op == "syspath":
                return sys.path
            return event
    ''',
    "pkg/sub/mod.py": '''
        def handler(event, context):
            return __name__
    ''',
    "bad_syntax.py": '''
        def handler(event, context)
            return 1
    ''',
    "init_raise.py": '''
        raise Exception("Runtime startup fails")
    ''',
    "import_dep.py": '''
        import not_installed_dep_xyz
    ''',
}


def py_main(cmd, root):
    rt = Runtime(cmd, root, "app.handler")
    try:
        event = {"hello": "world", "n": [1, 2.5, None, True], "u": "\u00e9\u4e2d"}
        rec = rt.invoke(event)
        eq(rec.kind, "response", "echo: posted to /response")
        eq(rec.json(), event, "echo: result equals event")
        check("init-print from app\n" in rec.stdout, "print at import time reaches stdout", rec.stdout)

        rec = rt.invoke({"op": "context"}, headers={
            "Lambda-Runtime-Trace-Id": "Root=1-abc;Parent=def;Sampled=1",
            "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"}),
            "Lambda-Runtime-Client-Context": json.dumps({"client": {"installation_id": "inst"},
                                                          "custom": {"k": "v"}, "env": {"e": "1"}}),
        })
        ctx = rec.json()
        eq(ctx["function_name"], "kumo-test", "context.function_name")
        eq(ctx["function_version"], "$LATEST", "context.function_version")
        eq(ctx["invoked_function_arn"], ARN, "context.invoked_function_arn")
        eq(ctx["memory_limit_in_mb"], "256", "context.memory_limit_in_mb (string)")
        eq(ctx["aws_request_id"], rec.request_id, "context.aws_request_id")
        eq(ctx["log_group_name"], "/aws/lambda/kumo-test", "context.log_group_name")
        eq(ctx["log_stream_name"], "2024/01/01/[$LATEST]abcdef", "context.log_stream_name")
        check(0 < ctx["remaining"] <= 30000 and ctx["remaining_is_int"], "remaining time positive int", ctx["remaining"])
        eq(ctx["trace"], "Root=1-abc;Parent=def;Sampled=1", "_X_AMZN_TRACE_ID set from header")
        eq([ctx["identity_id"], ctx["identity_pool"]], ["cid", "pool"], "context.identity")
        eq(ctx["cc"], [{"k": "v"}, {"e": "1"}, "inst"], "context.client_context")
        ctx = rt.invoke({"op": "context"}).json()
        eq(ctx["trace"], None, "_X_AMZN_TRACE_ID removed when header absent")
        eq([ctx["identity_id"], ctx["cc"]], [None, None], "identity fields / client_context empty without headers")

        a, b = rt.invoke({"op": "count"}).json(), rt.invoke({"op": "count"}).json()
        check(b["count"] == a["count"] + 1 and a["pid"] == b["pid"], "globals persist across invocations", (a, b))

        rec = rt.invoke({"op": "raise"})
        eq(rec.kind, "error", "handler exception: posted to /error")
        err = rec.json()
        eq(err["errorMessage"], "boom", "errorMessage")
        eq(err["errorType"], "ValueError", "errorType")
        eq(err["requestId"], rec.request_id, "requestId")
        eq(rec.headers.get("Lambda-Runtime-Function-Error-Type"), "ValueError", "error type header")
        st = err["stackTrace"]
        check(isinstance(st, list) and st and all(isinstance(s, str) for s in st), "stackTrace is a list of str", st)
        check(st and re.fullmatch(r'  File ".*app\.py", line \d+, in handler\n    raise ValueError\("boom"\)\n.*',
                                  st[-1], re.S), "stackTrace last frame is the user's raise", st)
        check(not any("bootstrap.py" in s for s in st), "stackTrace hides bootstrap frames", st)
        lines = lines_matching(rec.stdout, r"\[ERROR\] ValueError: boom\rTraceback \(most recent call last\):\r"
                                           r'  File ".*app\.py", line \d+, in handler\r    raise ValueError\("boom"\)')
        check(len(lines) == 1, "[ERROR] traceback printed as one stdout line before /error", rec.stdout[-500:])

        rec = rt.invoke({"op": "print", "marker": "m1"})
        eq(rec.json(), "printed", "print handler result")
        check("\nPRINT-m1\n" in rec.stdout, "print output on stdout before /response posted", rec.stdout[-300:])
        time.sleep(0.2)
        check("to-stderr-m1\n" in rt.err.text(), "stderr output captured", rt.err.text()[-300:])

        rec = rt.invoke({"op": "log", "marker": "m2"})
        rid = re.escape(rec.request_id)
        check(lines_matching(rec.stdout, r"\[WARNING\]\t%s\t%s\tmulti\rline m2" % (ISO, rid)),
              "logging line format (multi-line message on one line)", rec.stdout[-500:])
        check("hidden-info" not in rec.stdout and "debug-m2" not in rec.stdout,
              "default root level WARNING hides INFO/DEBUG", rec.stdout[-500:])
        check(lines_matching(rec.stdout, r"\[ERROR\]\t%s\t%s\tcaught-m2\rTraceback.*ZeroDivisionError.*" % (ISO, rid)),
              "logger.exception on one line", rec.stdout[-500:])

        rec = rt.invoke({"op": "unserializable"})
        eq(rec.kind, "error", "unserializable result -> /error")
        eq(rec.json()["errorType"], "Runtime.MarshalError", "MarshalError type")
        eq(rec.json()["errorMessage"], "Unable to marshal response: Object of type set is not JSON serializable",
           "MarshalError message")
        eq(rt.invoke({"op": "decimal"}).body, b'{"int": 3, "float": 1.5}', "Decimal serialised as int/float")
        eq(rt.invoke({"op": "none"}).body, b"null", "None result -> null")

        rec = rt.invoke(raw=b"{not json")
        eq(rec.kind, "error", "bad event JSON -> /error")
        eq(rec.json()["errorType"], "Runtime.UnmarshalError", "UnmarshalError type")
        check(rec.json()["errorMessage"].startswith("Unable to unmarshal input: Expecting property name"),
              "UnmarshalError message", rec.json()["errorMessage"])

        path = rt.invoke({"op": "syspath"}).json()
        eq(path[0], root, "task root first on sys.path")
        check(os.path.dirname(PY_BOOTSTRAP) not in path, "bootstrap dir not on sys.path", path)
        check(any(p.endswith("-packages") for p in path), "interpreter site-packages still on sys.path", path)

        eq(rt.api.connections, 1, "single keep-alive connection")
        rt.invoke({"op": "count"}, drop_connection=True)
        eq(rt.invoke({"x": 1}).json(), {"x": 1}, "reconnects after the server closed the connection")
        eq(rt.api.connections, 2, "exactly one reconnect")
        eq(rt.proc.poll(), None, "process still running after errors")
        latency(rt, "python")
    finally:
        rt.close()


def py_misc(cmd, root):
    rt = Runtime(cmd, root, "pkg/sub/mod.handler")
    try:
        eq(rt.invoke({}).json(), "pkg.sub.mod", "handler 'pkg/sub/mod.handler' imports module pkg.sub.mod")
    finally:
        rt.close()
    rt = Runtime(cmd, root, "app.handler", {"AWS_LAMBDA_LOG_LEVEL": "DEBUG"})
    try:
        rec = rt.invoke({"op": "log", "marker": "m3"})
        check(lines_matching(rec.stdout, r"\[DEBUG\]\t%s\t%s\tdebug-m3" % (ISO, re.escape(rec.request_id))),
              "AWS_LAMBDA_LOG_LEVEL=DEBUG enables debug logs", rec.stdout[-500:])
    finally:
        rt.close()


def py_init_errors(cmd, root):
    cases = [
        ("app", "Runtime.MalformedHandlerName", "Bad handler 'app': not enough values to unpack (expected 2, got 1)"),
        ("nope.handler", "Runtime.ImportModuleError", "Unable to import module 'nope': No module named 'nope'"),
        ("import_dep.handler", "Runtime.ImportModuleError",
         "Unable to import module 'import_dep': No module named 'not_installed_dep_xyz'"),
        ("bad_syntax.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'bad_syntax': *"),
        ("app.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'app'"),
        ("init_raise.handler", "Exception", "Runtime startup fails"),
    ]
    for handler, etype, message in cases:
        rt = Runtime(cmd, root, handler)
        try:
            rec, code = rt.init_error()
            body = rec.json()
            what = "init error %s: " % handler
            eq(rec.kind, "init_error", what + "posted to /runtime/init/error")
            eq(body.get("errorType"), etype, what + "errorType")
            if message.endswith("*"):
                check(body.get("errorMessage", "").startswith(message[:-1]), what + "errorMessage", body)
            else:
                eq(body.get("errorMessage"), message, what + "errorMessage")
            eq(body.get("requestId"), "", what + "requestId")
            check(isinstance(body.get("stackTrace"), list), what + "stackTrace list", body)
            eq(rec.headers.get("Lambda-Runtime-Function-Error-Type"), etype, what + "error type header")
            eq(code, 1, what + "exit status")
            check("[ERROR] %s: %s" % (etype, body.get("errorMessage")) in rt.out.text(), what + "stdout line",
                  rt.out.text()[-400:])
            if handler == "init_raise.handler":
                check(any("init_raise.py" in s for s in body["stackTrace"]), what + "stack has user frame", body)
        finally:
            rt.close()


def run_python(python):
    ver = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True).stdout.strip()
    print("Python bootstrap (%s %s)" % (python, ver))
    cmd = [python, PY_BOOTSTRAP]
    with tempfile.TemporaryDirectory(prefix="kumo-py-") as root:
        root = os.path.realpath(root)
        write_files(root, PY_FILES)
        run_test("invocations", py_main, cmd, root)
        run_test("nested module / log level", py_misc, cmd, root)
        run_test("init errors", py_init_errors, cmd, root)


# ---------------------------------------------------------------------------
# Node bootstrap.

NODE_FILES = {
    "index.js": '''
        let count = 0;
        console.log('init-log from index');
        exports.handler = async (event, context) => {
          const op = event && event.op;
          if (op === undefined) return event;
          switch (op) {
            case 'count': count += 1; return { count, pid: process.pid };
            case 'context': return {
              functionName: context.functionName, functionVersion: context.functionVersion,
              invokedFunctionArn: context.invokedFunctionArn, memoryLimitInMB: context.memoryLimitInMB,
              awsRequestId: context.awsRequestId, logGroupName: context.logGroupName,
              logStreamName: context.logStreamName, remaining: context.getRemainingTimeInMillis(),
              trace: process.env._X_AMZN_TRACE_ID ?? null, identity: context.identity ?? null,
              clientContext: context.clientContext ?? null,
              cwfe: context.callbackWaitsForEmptyEventLoop,
            };
            case 'throw': throw new TypeError('bad thing');
            case 'throwString': throw 'plain string';
            case 'log':
              console.log('hello\\nworld', { a: 1 });
              console.info('info-' + event.marker);
              console.warn('warned');
              console.error('errored');
              console.debug('debugged');
              return 'logged';
            case 'undefined': return undefined;
            case 'bigint': return { n: 1n };
            case 'delay': await new Promise((r) => setTimeout(r, 30)); return 'delayed';
            case 'stray':
              Promise.reject(new Error('stray rejection'));
              await new Promise((r) => setTimeout(r, 300));
              return 'late';
            case 'uncaught':
              setTimeout(() => { throw new SyntaxError('async boom'); }, 10);
              await new Promise((r) => setTimeout(r, 300));
              return 'late';
          }
          return event;
        };
        exports.cb = (event, context, callback) => {
          switch (event.op) {
            case 'ok': setTimeout(() => callback(null, { via: 'callback' }), 20); return;
            case 'err': callback(new RangeError('cb failed')); return;
            case 'succeed': context.succeed('legacy-ok'); return;
            case 'fail': context.fail(new Error('legacy-fail')); return;
            case 'never': return;
          }
        };
        exports.sync2 = (event, context) => ({ sync: true, id: context.awsRequestId });
        exports.nested = { deeper: { fn: async () => 'nested-ok' } };
        exports.notFn = 42;
    ''',
    "esm.mjs": '''
        await Promise.resolve();
        export const handler = async (event) => ({ esm: true, event });
    ''',
    "esmpkg/package.json": '{"type": "module"}\n',
    "esmpkg/app.js": '''
        export async function handler() { return import.meta.url.endsWith('/esmpkg/app.js'); }
    ''',
    "legacy.cjs": '''
        module.exports.handler = async () => 'cjs-ok';
    ''',
    "lib/index.js": '''
        exports.handler = async () => 'dir-index-ok';
    ''',
    "syntax.js": '''
        exports.handler = async (e) => {
    ''',
    "throws.js": '''
        class StartupError extends Error { constructor(m) { super(m); this.name = 'StartupError'; } }
        throw new StartupError('Runtime startup fails');
    ''',
    "dep.js": '''
        require('not-installed-dep-xyz');
        exports.handler = async () => 1;
    ''',
}


def node_main(cmd, root):
    rt = Runtime(cmd, root, "index.handler")
    try:
        event = {"hello": "world", "n": [1, 2.5, None, True], "u": "\u00e9\u4e2d"}
        rec = rt.invoke(event)
        eq(rec.kind, "response", "echo: posted to /response")
        eq(rec.json(), event, "echo: result equals event")
        check(lines_matching(rec.stdout, r"%s\tundefined\tINFO\tinit-log from index" % ISO),
              "console.log at load time (request id undefined)", rec.stdout)

        rec = rt.invoke({"op": "context"}, headers={
            "Lambda-Runtime-Trace-Id": "Root=1-abc",
            "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"}),
            "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}}),
        })
        ctx = rec.json()
        eq(ctx["functionName"], "kumo-test", "context.functionName")
        eq(ctx["functionVersion"], "$LATEST", "context.functionVersion")
        eq(ctx["invokedFunctionArn"], ARN, "context.invokedFunctionArn")
        eq(ctx["memoryLimitInMB"], "256", "context.memoryLimitInMB (string)")
        eq(ctx["awsRequestId"], rec.request_id, "context.awsRequestId")
        eq(ctx["logGroupName"], "/aws/lambda/kumo-test", "context.logGroupName")
        eq(ctx["logStreamName"], "2024/01/01/[$LATEST]abcdef", "context.logStreamName")
        check(0 < ctx["remaining"] <= 30000, "getRemainingTimeInMillis positive", ctx["remaining"])
        eq(ctx["trace"], "Root=1-abc", "_X_AMZN_TRACE_ID set")
        eq(ctx["identity"], {"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"}, "context.identity")
        eq(ctx["clientContext"], {"custom": {"k": "v"}}, "context.clientContext")
        eq(ctx["cwfe"], True, "callbackWaitsForEmptyEventLoop present")
        ctx = rt.invoke({"op": "context"}).json()
        eq([ctx["trace"], ctx["identity"], ctx["clientContext"]], [None, None, None], "absent headers")

        a, b = rt.invoke({"op": "count"}).json(), rt.invoke({"op": "count"}).json()
        check(b["count"] == a["count"] + 1 and a["pid"] == b["pid"], "globals persist across invocations", (a, b))

        rec = rt.invoke({"op": "throw"})
        eq(rec.kind, "error", "thrown error -> /error")
        err = rec.json()
        eq(err["errorType"], "TypeError", "errorType")
        eq(err["errorMessage"], "bad thing", "errorMessage")
        check(isinstance(err["trace"], list) and err["trace"][0] == "TypeError: bad thing"
              and any("index.js" in t for t in err["trace"]), "trace is stack lines", err.get("trace"))
        eq(rec.headers.get("Lambda-Runtime-Function-Error-Type"), "TypeError", "error type header")
        check(lines_matching(rec.stdout, r'%s\t%s\tERROR\tInvoke Error \t\{"errorType":"TypeError",'
                                         r'"errorMessage":"bad thing","stack":\["TypeError: bad thing",.*\]\}'
                                         % (ISO, re.escape(rec.request_id))),
              "Invoke Error line on stdout before /error", rec.stdout[-500:])
        rec = rt.invoke({"op": "throwString"})
        eq([rec.json()["errorType"], rec.json()["errorMessage"]], ["string", "plain string"], "thrown string")

        rec = rt.invoke({"op": "log", "marker": "m1"})
        rid = re.escape(rec.request_id)
        for level, msg in [("INFO", r"hello\rworld \{ a: 1 \}"), ("INFO", "info-m1"), ("WARN", "warned"),
                           ("ERROR", "errored"), ("DEBUG", "debugged")]:
            check(lines_matching(rec.stdout, r"%s\t%s\t%s\t%s" % (ISO, rid, level, msg)),
                  "console %s line before /response: %s" % (level, msg), rec.stdout[-500:])

        eq(rt.invoke({"op": "undefined"}).body, b"null", "undefined result -> null")
        rec = rt.invoke({"op": "bigint"})
        eq([rec.kind, rec.json()["errorType"]], ["error", "Runtime.MarshalError"], "BigInt result -> MarshalError")
        eq(rt.invoke({"op": "delay"}).json(), "delayed", "async handler awaiting a timer")
        rec = rt.invoke(raw=b"{not json")
        eq([rec.kind, rec.json()["errorType"]], ["error", "Runtime.UnmarshalError"], "bad event JSON")

        eq(rt.api.connections, 1, "single keep-alive connection")
        rt.invoke({"op": "count"}, drop_connection=True)
        eq(rt.invoke({"x": 1}).json(), {"x": 1}, "reconnects after the server closed the connection")
        eq(rt.api.connections, 2, "exactly one reconnect")
        latency(rt, "node")

        rec = rt.invoke({"op": "stray"})
        eq(rec.kind, "error", "unhandled rejection -> /error")
        eq(rec.json()["errorType"], "Runtime.UnhandledPromiseRejection", "UnhandledPromiseRejection type")
        eq(rec.json()["errorMessage"], "Error: stray rejection", "UnhandledPromiseRejection message")
        eq(rt.proc.wait(10), 1, "process exits 1 after unhandled rejection")
        time.sleep(0.1)
        check(rt.api.results.empty(), "no late /response after the rejection", None)
    finally:
        rt.close()


def node_styles(cmd, root):
    rt = Runtime(cmd, root, "index.cb")
    try:
        eq(rt.invoke({"op": "ok"}).json(), {"via": "callback"}, "callback(null, result)")
        rec = rt.invoke({"op": "err"})
        eq([rec.kind, rec.json()["errorType"], rec.json()["errorMessage"]], ["error", "RangeError", "cb failed"],
           "callback(err)")
        eq(rt.invoke({"op": "succeed"}).json(), "legacy-ok", "context.succeed")
        rec = rt.invoke({"op": "fail"})
        eq([rec.kind, rec.json()["errorMessage"]], ["error", "legacy-fail"], "context.fail")
        eq(rt.invoke({"op": "never"}).body, b"null", "callback never called, event loop empty -> null")
        eq(rt.invoke({"op": "ok"}).json(), {"via": "callback"}, "still serving afterwards")
    finally:
        rt.close()
    rt = Runtime(cmd, root, "index.handler")
    try:
        rec = rt.invoke({"op": "uncaught"})
        eq([rec.kind, rec.json()["errorType"], rec.json()["errorMessage"]], ["error", "SyntaxError", "async boom"],
           "uncaught exception during invocation -> /error")
        check(re.search(r"\tERROR\tUncaught Exception \t", rec.stdout), "Uncaught Exception line", rec.stdout[-300:])
        eq(rt.proc.wait(10), 1, "process exits 1 after uncaught exception")
    finally:
        rt.close()
    for handler, expected, what in [
        ("index.sync2", None, "sync handler returning a value"),
        ("index.nested.deeper.fn", "nested-ok", "nested export path"),
        ("esm.handler", {"esm": True, "event": {"v": 1}}, ".mjs module with top-level await"),
        ("esmpkg/app.handler", True, ".js in a \"type\":\"module\" package"),
        ("legacy.handler", "cjs-ok", ".cjs module"),
        ("lib.handler", "dir-index-ok", "directory index"),
    ]:
        rt = Runtime(cmd, root, handler)
        try:
            rec = rt.invoke({"v": 1})
            if expected is None:
                eq(rec.json(), {"sync": True, "id": rec.request_id}, what)
            else:
                eq(rec.json(), expected, what)
        finally:
            rt.close()


def node_init_errors(cmd, root):
    cases = [
        ("index", "Runtime.MalformedHandlerName", "Bad handler index"),
        ("nope.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nope'"),
        ("dep.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'not-installed-dep-xyz'*"),
        ("index.missing", "Runtime.HandlerNotFound", "index.missing is undefined or not exported"),
        ("index.notFn", "Runtime.HandlerNotFound", "index.notFn is undefined or not exported"),
        ("syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: *"),
        ("throws.handler", "StartupError", "Runtime startup fails"),
    ]
    for handler, etype, message in cases:
        rt = Runtime(cmd, root, handler)
        try:
            rec, code = rt.init_error()
            body = rec.json()
            what = "init error %s: " % handler
            eq(rec.kind, "init_error", what + "posted to /runtime/init/error")
            eq(body.get("errorType"), etype, what + "errorType")
            if message.endswith("*"):
                check(body.get("errorMessage", "").startswith(message[:-1]), what + "errorMessage", body)
            else:
                eq(body.get("errorMessage"), message, what + "errorMessage")
            check(isinstance(body.get("trace"), list), what + "trace list", body)
            eq(rec.headers.get("Lambda-Runtime-Function-Error-Type"), etype, what + "error type header")
            eq(code, 1, what + "exit status")
            check(re.search(r'\tundefined\tERROR\tUncaught Exception \t\{"errorType":"%s"' % re.escape(etype),
                            rt.out.text()), what + "stdout line", rt.out.text()[-400:])
        finally:
            rt.close()


def run_node(node):
    ver = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    print("Node bootstrap (%s %s)" % (node, ver))
    cmd = [node, NODE_BOOTSTRAP]
    with tempfile.TemporaryDirectory(prefix="kumo-node-") as root:
        root = os.path.realpath(root)
        write_files(root, NODE_FILES)
        run_test("invocations", node_main, cmd, root)
        run_test("handler styles and module kinds", node_styles, cmd, root)
        run_test("init errors", node_init_errors, cmd, root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the Python bootstrap")
    parser.add_argument("--node", default=shutil.which("node"), help="node binary (default: from PATH)")
    parser.add_argument("--skip-node", action="store_true")
    args = parser.parse_args()

    started = time.time()
    run_python(args.python)
    if args.node and not args.skip_node:
        run_node(args.node)
    else:
        print("Node bootstrap: skipped (node not found)")
    print("\n%d checks passed, %d failed in %.1fs" % (PASSED, len(FAILED), time.time() - started))
    for f in FAILED:
        print("  failed: " + f)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
