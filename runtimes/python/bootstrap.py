"""Kumo managed-runtime bootstrap for Python (Lambda Runtime API 2018-06-01).

Kumo starts it as `python bootstrap.py` with cwd = $LAMBDA_TASK_ROOT and the
usual Lambda environment.  Standard library only; works on Python 3.8+.

Flow: import the handler once (reporting failures to /runtime/init/error and
exiting 1), then loop forever: GET /next -> call handler -> POST /response or
/error.  Everything printed goes to stdout, one log event per line.
"""
import http.client
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

# Names under which tracebacks may show this file (3.8 keeps __file__ relative).
_THIS_FILES = {__file__, os.path.abspath(__file__)}
_RUNTIME = "/2018-06-01/runtime"

# Request id of the invocation in progress; read by the log formatter.
_request_id = ""


# --------------------------------------------------------------------------
# Runtime API client: one persistent keep-alive connection.

class _Connection(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        # Tiny request/response messages: without this, Nagle + delayed ACK
        # can add tens of milliseconds to a round trip.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class RuntimeClient:
    def __init__(self, address):
        # timeout=None: /next blocks until an event arrives, however long,
        # even if user code later calls socket.setdefaulttimeout().
        self._conn = _Connection(address, timeout=None)

    def _call(self, method, path, body=None, error_type=None):
        for attempt in (1, 2):  # reconnect once if the server dropped us
            conn = self._conn
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                if body is not None:
                    conn.putheader("Content-Type", "application/json")
                    conn.putheader("Content-Length", str(len(body)))
                if error_type is not None:
                    conn.putheader("Lambda-Runtime-Function-Error-Type", error_type)
                conn.endheaders(body)
                resp = conn.getresponse()
                return resp, resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()  # resets state; the next putrequest reconnects
                if attempt == 2:
                    raise

    def next(self):
        resp, body = self._call("GET", _RUNTIME + "/invocation/next")
        if resp.status != 200:
            raise RuntimeError("/invocation/next returned HTTP %d: %r" % (resp.status, body[:200]))
        return resp.headers, body

    def post(self, path, payload, error_type=None):
        resp, data = self._call("POST", _RUNTIME + path, payload, error_type)
        if resp.status != 202:
            # e.g. 413 for an oversized payload; Kumo reports it, we keep going.
            sys.stderr.write("[kumo-runtime] POST %s returned HTTP %d: %s\n"
                             % (path, resp.status, data[:500].decode("utf-8", "replace")))

    def post_error(self, path, body):
        # Header values must be latin-1 without CR/LF; class names may be Unicode.
        header = body["errorType"].encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
        self.post(path, json.dumps(body).encode("utf-8"), header)


# --------------------------------------------------------------------------
# Context object handed to the handler (same attribute names as Lambda).

class _Record:
    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.__dict__)


class CognitoIdentity(_Record):
    def __init__(self, data):
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client(_Record):
    def __init__(self, data):
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext(_Record):
    def __init__(self, data):
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")


def _json_header(headers, name):
    raw = headers.get(name)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class LambdaContext:
    # Per-function values are class attributes: set once, not per invocation.
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
    memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")

    def __init__(self, request_id, deadline_ms, arn, identity, client_context):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self._deadline_ms = deadline_ms
        # Like Lambda: identity is always an object, its fields may be None.
        self.identity = CognitoIdentity(identity or {})
        self.client_context = ClientContext(client_context) if client_context else None

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)


# --------------------------------------------------------------------------
# Logging and error reporting.

class _LambdaFormatter(logging.Formatter):
    def format(self, record):
        text = super().format(record)  # message plus any exc_info/stack_info
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        # "\r" keeps a multi-line message (or traceback) in ONE log event.
        return "[%s]\t%s.%03dZ\t%s\t%s" % (record.levelname, stamp, record.msecs,
                                          _request_id, text.replace("\n", "\r"))


def _add_request_id(record):
    # Lets users' own formatters use %(aws_request_id)s, as on Lambda.
    record.aws_request_id = _request_id
    return True


_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
           "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
           "FATAL": logging.CRITICAL, "CRITICAL": logging.CRITICAL}


def _setup_output():
    # stdout is a pipe (block-buffered by default); Kumo wants lines promptly.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_LambdaFormatter("%(message)s"))
    handler.addFilter(_add_request_id)
    root = logging.getLogger()
    root.handlers[:] = [handler]  # so a later logging.basicConfig() is a no-op, as on Lambda
    root.setLevel(_LEVELS.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper(), logging.WARNING))


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _user_frames(tb):
    # Hide the bootstrap's own frames and importlib's machinery.
    return [f for f in traceback.extract_tb(tb)
            if f.filename not in _THIS_FILES and not f.filename.startswith("<frozen importlib")]


def _text(exc):
    try:
        return str(exc)
    except Exception:  # a user __str__ that raises must not kill the runtime
        return "<unprintable %s>" % type(exc).__name__


def _error_body(error_type, message, request_id, stack):
    return {"errorMessage": message, "errorType": error_type,
            "requestId": request_id, "stackTrace": stack}


def _log_error(body):
    # One log event: "[ERROR] Type: message\rTraceback (most recent call last):\r..."
    line = "[ERROR] %s: %s\rTraceback (most recent call last):\r%s" % (
        body["errorType"], body["errorMessage"], "".join(body["stackTrace"]))
    sys.stdout.write(line.replace("\n", "\r").rstrip("\r") + "\n")
    _flush()


def _json_default(obj):
    import decimal  # only reached for values json can't encode natively
    if isinstance(obj, decimal.Decimal):
        if obj.is_finite() and obj == obj.to_integral_value():
            return int(obj)
        return float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


# --------------------------------------------------------------------------
# Init: locate and import the handler.

class InitError(Exception):
    def __init__(self, error_type, message, stack=()):
        super().__init__(message)
        self.error_type, self.message, self.stack = error_type, message, list(stack)


def _setup_sys_path(task_root):
    # Drop the bootstrap's own directory (sys.path[0]) so it can't shadow user
    # modules; put the task root first and layers next.  The interpreter's
    # site-packages stay on the path, so an installed boto3 keeps working.
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != here]
    ver = "python%d.%d" % sys.version_info[:2]
    extra = [p for p in ("/opt/python/lib/%s/site-packages" % ver, "/opt/python") if os.path.isdir(p)]
    sys.path[0:0] = [task_root] + extra


def load_handler(handler):
    try:
        module_path, func_name = handler.rsplit(".", 1)
    except ValueError as e:
        raise InitError("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InitError("Runtime.ImportModuleError",
                        "Unable to import module '%s': %s" % (module_name, e),
                        traceback.format_list(_user_frames(e.__traceback__)))
    except SyntaxError as e:
        where = ['  File "%s" Line %s\n    %s\n' % (e.filename, e.lineno, (e.text or "").strip())]
        raise InitError("Runtime.UserCodeSyntaxError",
                        "Syntax error in module '%s': %s" % (module_name, e), where)
    # Any other exception from module init propagates; main() reports it
    # with the exception's own class name, as Lambda does.
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise InitError("Runtime.HandlerNotFound",
                        "Handler '%s' missing on module '%s'" % (func_name, module_name))


# --------------------------------------------------------------------------
# Main loop.

def _report(client, request_id, error_type, message, stack=()):
    body = _error_body(error_type, message, request_id, list(stack))
    _log_error(body)
    client.post_error("/invocation/%s/error" % request_id, body)


def serve(client, handler):
    global _request_id
    environ, loads, dumps = os.environ, json.loads, json.dumps
    while True:
        headers, raw = client.next()
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        _request_id = request_id
        trace_id = headers.get("Lambda-Runtime-Trace-Id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            environ.pop("_X_AMZN_TRACE_ID", None)

        try:
            event = loads(raw)
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            _report(client, request_id, "Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)
            continue

        context = LambdaContext(
            request_id, int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
            headers.get("Lambda-Runtime-Invoked-Function-Arn"),
            _json_header(headers, "Lambda-Runtime-Cognito-Identity"),
            _json_header(headers, "Lambda-Runtime-Client-Context"))
        try:
            result = handler(event, context)
        except Exception as e:
            _flush()
            _report(client, request_id, type(e).__name__, _text(e),
                    traceback.format_list(_user_frames(e.__traceback__)))
            continue

        try:
            payload = dumps(result, default=_json_default).encode("utf-8")
        except Exception as e:
            _flush()
            _report(client, request_id, "Runtime.MarshalError", "Unable to marshal response: %s" % e)
            continue
        _flush()  # everything the handler printed is in the pipe before /response
        client.post("/invocation/%s/response" % request_id, payload)


def main():
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("[kumo-runtime] AWS_LAMBDA_RUNTIME_API is not set\n")
        sys.exit(1)
    client = RuntimeClient(address)
    _setup_output()
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    _setup_sys_path(task_root)

    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        if isinstance(e, InitError):
            body = _error_body(e.error_type, e.message, "", e.stack)
        else:
            body = _error_body(type(e).__name__, _text(e), "",
                               traceback.format_list(_user_frames(e.__traceback__)))
        _log_error(body)
        try:
            client.post_error("/init/error", body)
        except Exception as post_error:
            sys.stderr.write("[kumo-runtime] could not post init error: %s\n" % post_error)
        _flush()
        os._exit(1)  # not sys.exit: user threads started at import must not keep us alive

    try:
        serve(client, handler)
    except Exception as e:  # the Runtime API went away or misbehaved
        _flush()
        sys.stderr.write("[kumo-runtime] fatal: %r\n" % e)
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    main()
