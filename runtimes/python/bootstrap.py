"""Kumo managed-runtime bootstrap for Python (Lambda Runtime API 2018-06-01).

Kumo starts it as `python bootstrap.py` with cwd = $LAMBDA_TASK_ROOT and the
usual Lambda environment.  Standard library only; works on Python 3.8+.

Flow: import the handler once (reporting failures to /runtime/init/error and
exiting 1), then loop forever: GET /next -> call handler -> POST /response or
/error.  Everything printed goes to stdout, one log event per line.

Start-up time matters (it is part of every cold start), so this file imports
as little as possible before the first /next: no http.client (which drags in
the email package), no logging/traceback/importlib unless they are needed.
"""
import _socket  # socket.py's C core; socket.py itself adds selectors + IntEnum setup (~2 ms)
import os
import sys
import time

# Names under which tracebacks may show this file (3.8 keeps __file__ relative).
_THIS_FILES = {__file__, os.path.abspath(__file__)}
_RUNTIME = "/2018-06-01/runtime"

# Request id of the invocation in progress; read by the log formatter.
_request_id = ""


# --------------------------------------------------------------------------
# JSON through _json, the C accelerator inside the json package: `import json`
# also imports `re` (with enum, functools, collections...), ~6 ms at start-up,
# as much as everything else here.  _loads/_dumps call the very C code that
# json.loads(raw) / json.dumps(obj, default=_json_default) run, with json's
# default options.  Anything off that path (malformed or non-UTF-8 input, or
# no _json) is handed to the real json module, imported then, so results and
# error messages are always json's own.

try:
    import _json
except ImportError:  # not CPython
    _json = None


class _DecoderOptions:
    # The attributes json.JSONDecoder() hands its C scanner by default.
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int = float, int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan = _json.make_scanner(_DecoderOptions) if _json else None
_WS = " \t\n\r"  # JSON whitespace


def _loads(raw):
    """json.loads(raw) for str, bytes or bytearray."""
    if _scan is not None:
        try:
            s = raw
            if not isinstance(s, str):
                # json.loads guesses the encoding; it is UTF-8 unless the data
                # starts with a BOM or a NUL byte (UTF-16/32): leave those to json.
                head = bytes(raw[:2])
                if b"\x00" < head[:1] < b"\x80" and b"\x00" not in head:
                    s = raw.decode("utf-8", "surrogatepass")
            if isinstance(s, str):
                i, n = 0, len(s)
                while i < n and s[i] in _WS:
                    i += 1
                obj, end = _scan(s, i)
                if end == n or not s[end:].strip(_WS):
                    return obj
        except Exception:
            pass  # json.loads below raises the proper error
    import json
    return json.loads(raw)


def _dumps(obj):
    """json.dumps(obj, default=_json_default)."""
    if _json is None:
        import json
        return json.dumps(obj, default=_json_default)
    if isinstance(obj, str):
        return _json.encode_basestring_ascii(obj)
    # A fresh encoder (and circular-reference memo) per call, as json does.
    encode = _json.make_encoder({}, _json_default, _json.encode_basestring_ascii, None,
                                ": ", ", ", False, False, True)
    return "".join(encode(obj, 0))


# --------------------------------------------------------------------------
# Runtime API client: a minimal HTTP/1.1 client on one persistent keep-alive
# connection.  The peer is Kumo's own Runtime API, so only what it (or any
# sane HTTP/1.1 server) sends is supported: Content-Length or chunked bodies,
# or read-to-close when neither is given.

class RuntimeClient:
    def __init__(self, address):
        # "host:port", "[v6]:port" or just "host" (port 80), as http.client parsed it.
        i, j = address.rfind(":"), address.rfind("]")
        host, port = (address[:i], address[i + 1:]) if i > j else (address, "")
        host = host.strip("[]")
        # getaddrinfo() IDNA-encodes a str host, importing encodings.idna and
        # `re` (~6 ms); an ASCII name or address can be passed as bytes as-is.
        self._addr = (host.encode() if host.isascii() else host, int(port or 80))
        self._host = address
        self._sock = None
        self._buf = b""  # bytes received but not yet consumed

    def _connect(self):
        err = OSError("cannot resolve %r" % (self._addr[0],))
        for family, kind, proto, _, sockaddr in _socket.getaddrinfo(*self._addr, 0, _socket.SOCK_STREAM):
            sock = _socket.socket(family, kind, proto)
            try:
                # Blocking with no timeout: /next waits until an event arrives,
                # however long, even if user code calls socket.setdefaulttimeout().
                sock.settimeout(None)
                sock.connect(sockaddr)
                # Tiny request/response messages: without this, Nagle + delayed
                # ACK can add tens of milliseconds to a round trip.
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                return sock
            except OSError as e:
                sock.close()
                err = e
        raise err

    def _close(self):
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buf = None, b""

    def _fill(self):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("Runtime API closed the connection")
        self._buf += chunk

    def _read_line(self, limit=65536):
        # One CRLF-terminated line (for chunked framing), without the CRLF.
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 2:]
                return line
            if len(self._buf) > limit:
                raise ConnectionError("line too long from Runtime API")
            self._fill()

    def _read_exact(self, n):
        buf = self._buf
        if len(buf) >= n:
            self._buf = buf[n:]
            return buf if len(buf) == n else buf[:n]
        # Large body: receive straight into a preallocated buffer (json.loads takes bytearray).
        body = bytearray(n)
        body[:len(buf)] = buf
        pos, self._buf = len(buf), b""
        with memoryview(body) as view:
            while pos < n:
                got = self._sock.recv_into(view[pos:])
                if not got:
                    raise ConnectionResetError("Runtime API closed the connection mid-body")
                pos += got
        return body

    def _read_head(self):
        # Status line and headers, up to the blank line.  Header names are
        # case-insensitive: stored lower-cased; the first of duplicates wins.
        # Raises ValueError for a malformed status line.
        start = 0
        while True:
            self._buf = self._buf.lstrip(b"\r\n")  # stray empty lines before a status line are allowed
            end = self._buf.find(b"\r\n\r\n", start)
            if end >= 0:
                break
            if len(self._buf) > 1 << 20:
                raise ConnectionError("response headers too large")
            start = max(len(self._buf) - 3, 0)
            self._fill()
        lines = self._buf[:end].decode("latin-1").split("\r\n")
        self._buf = self._buf[end + 4:]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not (version.startswith("HTTP/") and code.isdecimal() and rest[3:4] in ("", " ")):
            raise ValueError("bad status line %r" % lines[0][:100])
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                headers.setdefault(name.strip().lower(), value.strip())
        return version, int(code), headers

    def _read_response(self):
        try:
            version, status, headers = self._read_head()
            while 100 <= status < 200:  # interim responses (we never send Expect, but be safe)
                version, status, headers = self._read_head()
            tokens = headers.get("connection", "").lower()
            close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
            coding = headers.get("transfer-encoding", "").lower()
            if status in (204, 304):
                body = b""
            elif coding:
                if coding.rsplit(",", 1)[-1].strip() != "chunked":
                    body, close = self._read_to_close(), True
                else:
                    parts = []
                    while True:
                        size = int(self._read_line().split(b";", 1)[0], 16)
                        if size <= 0:
                            if size < 0:
                                raise ValueError("negative chunk size")
                            break
                        parts.append(self._read_exact(size))
                        if self._read_line():
                            raise ValueError("chunk not followed by CRLF")
                    while self._read_line():  # trailer fields, up to the blank line
                        pass
                    body = b"".join(parts)
            elif "content-length" in headers:
                length = int(headers["content-length"])
                if length < 0:
                    raise ValueError("negative Content-Length")
                body = self._read_exact(length)
            else:
                body, close = self._read_to_close(), True
        except ValueError as e:  # malformed response: handled like a broken connection
            raise ConnectionError("bad response from Runtime API: %s" % e)
        if close:
            self._close()  # the next call reconnects
        return status, headers, body

    def _read_to_close(self):
        parts = [self._buf]
        while True:
            chunk = self._sock.recv(65536)
            if not chunk:
                self._buf = b""
                return b"".join(parts)
            parts.append(chunk)

    def _call(self, method, path, body=None, error_type=None):
        # The whole request in one buffer and one sendall: one segment for small messages.
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self._host)
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        if error_type is not None:
            head += "Lambda-Runtime-Function-Error-Type: %s\r\n" % error_type
        request = (head + "\r\n").encode("latin-1") + (body or b"")
        for attempt in (1, 2):  # reconnect once if the server dropped us
            try:
                if self._sock is None:
                    self._sock = self._connect()
                self._sock.sendall(request)
                return self._read_response()
            except OSError:
                self._close()
                if attempt == 2:
                    raise

    def next(self):
        status, headers, body = self._call("GET", _RUNTIME + "/invocation/next")
        if status != 200:
            raise RuntimeError("/invocation/next returned HTTP %d: %r" % (status, bytes(body[:200])))
        return headers, body

    def post(self, path, payload, error_type=None):
        status, _, data = self._call("POST", _RUNTIME + path, payload, error_type)
        if status != 202:
            # e.g. 413 for an oversized payload; Kumo reports it, we keep going.
            sys.stderr.write("[kumo-runtime] POST %s returned HTTP %d: %s\n"
                             % (path, status, data[:500].decode("utf-8", "replace")))

    def post_error(self, path, body):
        # Header values must be latin-1 without CR/LF; class names may be Unicode.
        header = body["errorType"].encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
        self.post(path, _dumps(body).encode("utf-8"), header)


_URL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:@!$&'()*+,;=")


def _quote(segment):
    # Request ids are UUIDs; percent-encode anything else (UTF-8) so an odd id
    # can't break the request line.
    if _URL_SAFE.issuperset(segment):
        return segment
    return "".join(chr(b) if chr(b) in _URL_SAFE else "%%%02X" % b for b in segment.encode("utf-8"))


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
    raw = headers.get(name)  # name lower-case, as RuntimeClient stores them
    if not raw:
        return None
    try:
        data = _loads(raw)
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
# Logging.  Importing `logging` costs several ms (it pulls in traceback,
# threading, string, weakref...), which a handler that never logs shouldn't
# pay.  So the root logger is configured at the moment `logging` is first
# imported by anyone (the handler, boto3, ...): _LoggingHook wraps that one
# module execution.  The importer thus gets an already-configured module, as
# if the bootstrap had set it up first (as Lambda's does).

_stdout = sys.stdout  # the log handler writes here even if user code swaps sys.stdout
_logging_ready = False


def _configure_logging(logging):
    global _logging_ready
    if _logging_ready:
        return
    _logging_ready = True

    class _LambdaFormatter(logging.Formatter):
        def format(self, record):
            text = super().format(record)  # message plus any exc_info/stack_info
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            # "\r" keeps a multi-line message (or traceback) in ONE log event.
            return "[%s]\t%s.%03dZ\t%s\t%s" % (record.levelname, stamp, record.msecs,
                                              _request_id, text.replace("\n", "\r"))

    def add_request_id(record):
        # Lets users' own formatters use %(aws_request_id)s, as on Lambda.
        record.aws_request_id = _request_id
        return True

    handler = logging.StreamHandler(_stdout)
    handler.setFormatter(_LambdaFormatter("%(message)s"))
    handler.addFilter(add_request_id)
    root = logging.getLogger()
    root.handlers[:] = [handler]  # so a later logging.basicConfig() is a no-op, as on Lambda
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
    root.setLevel(level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "WARNING")


class _LoggingHook:
    """sys.meta_path entry: lets the normal finders locate `logging`, then
    makes its loader run _configure_logging right after executing it.
    It stays installed (inert once logging is set up): a handler may import
    logging only during an invocation, and removing it from inside an import
    could upset importlib, which may be iterating over sys.meta_path."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging" or _logging_ready:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # unusual loader: main() configures logging after the handler import

        def exec_module(module):
            del loader.exec_module  # restore the class method (the loader may be shared, e.g. zipimport)
            loader.exec_module(module)
            if module.__name__ == "logging":
                _configure_logging(module)

        loader.exec_module = exec_module
        return spec


def _setup_output():
    # stdout is a pipe (block-buffered by default); Kumo wants lines promptly.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass


def _setup_logging():
    if "logging" in sys.modules:  # already imported (e.g. by sitecustomize)
        _configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _LoggingHook())


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# --------------------------------------------------------------------------
# Error reporting.

def _stack(tb):
    # Formatted frames of a traceback, hiding the bootstrap's own frames and
    # importlib's machinery.  traceback is imported only when an error happens.
    import traceback
    return traceback.format_list([
        f for f in traceback.extract_tb(tb)
        if f.filename not in _THIS_FILES and not f.filename.startswith("<frozen importlib")])


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
        # __import__ + sys.modules is importlib.import_module without importing importlib.
        __import__(module_name)
        module = sys.modules[module_name]
    except ImportError as e:
        raise InitError("Runtime.ImportModuleError",
                        "Unable to import module '%s': %s" % (module_name, e), _stack(e.__traceback__))
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
    client.post_error("/invocation/%s/error" % _quote(request_id), body)


def serve(client, handler):
    global _request_id
    environ = os.environ
    while True:
        headers, raw = client.next()
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        _request_id = request_id
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            environ.pop("_X_AMZN_TRACE_ID", None)

        try:
            event = _loads(raw)
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            _report(client, request_id, "Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)
            continue

        context = LambdaContext(
            request_id, int(headers.get("lambda-runtime-deadline-ms") or 0),
            headers.get("lambda-runtime-invoked-function-arn"),
            _json_header(headers, "lambda-runtime-cognito-identity"),
            _json_header(headers, "lambda-runtime-client-context"))
        try:
            result = handler(event, context)
        except Exception as e:
            _flush()
            _report(client, request_id, type(e).__name__, _text(e), _stack(e.__traceback__))
            continue

        try:
            payload = _dumps(result).encode("utf-8")
        except Exception as e:
            _flush()
            _report(client, request_id, "Runtime.MarshalError", "Unable to marshal response: %s" % e)
            continue
        _flush()  # everything the handler printed is in the pipe before /response
        client.post("/invocation/%s/response" % _quote(request_id), payload)


def main():
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("[kumo-runtime] AWS_LAMBDA_RUNTIME_API is not set\n")
        sys.exit(1)
    client = RuntimeClient(address)
    _setup_output()
    _setup_logging()  # before the handler import, which may log
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    _setup_sys_path(task_root)

    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        if isinstance(e, InitError):
            body = _error_body(e.error_type, e.message, "", e.stack)
        else:
            body = _error_body(type(e).__name__, _text(e), "", _stack(e.__traceback__))
        _log_error(body)
        try:
            client.post_error("/init/error", body)
        except Exception as post_error:
            sys.stderr.write("[kumo-runtime] could not post init error: %s\n" % post_error)
        _flush()
        os._exit(1)  # not sys.exit: user threads started at import must not keep us alive

    if "logging" in sys.modules:  # in case some other import hook bypassed _LoggingHook
        _configure_logging(sys.modules["logging"])

    try:
        serve(client, handler)
    except Exception as e:  # the Runtime API went away or misbehaved
        _flush()
        sys.stderr.write("[kumo-runtime] fatal: %r\n" % e)
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    main()
