#!/usr/bin/env python3
# Crash test for the async queue: accept N Event invokes against a slow function,
# kill -9 Kumo while the queue drains, restart it, and count lost and duplicated
# events from the START lines. Usage: async-crash-test.py KUMO_BIN ECHO_ZIP N
# (ECHO_ZIP: the lambda_runtime example, zipped as `bootstrap`). Loopback only.
import sys, time, json, urllib.request, base64, subprocess, os, signal, concurrent.futures, shutil
KUMO = sys.argv[1]; zpath = sys.argv[2]; n = int(sys.argv[3]); data = "/tmp/kcrash"
shutil.rmtree(data, ignore_errors=True)
def start():
    p = subprocess.Popen([KUMO, "serve", "--listen", "127.0.0.1:9872", "--data-dir", data, "--auth", "none"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.startswith("Kumo listening"): break
    return p
E = "http://127.0.0.1:9872"
def call(method, path, body=None, headers={}):
    req = urllib.request.Request(E + path, data=body, method=method, headers={"content-type":"application/json", **headers})
    with urllib.request.urlopen(req, timeout=120) as r: return r.read(), r.headers
p = start()
code = base64.b64encode(open(zpath,'rb').read()).decode()
call("POST", "/2015-03-31/functions", json.dumps({"FunctionName": "slow", "Runtime": "provided.al2023", "Handler": "bootstrap", "Role": "arn:aws:iam::000000000000:role/r", "Code": {"ZipFile": code}, "Timeout": 30}).encode())
ids = []
def one(i):
    _, h = call("POST", "/2015-03-31/functions/slow/invocations", json.dumps({"sleep_ms": 20, "i": i}).encode(), {"x-amz-invocation-type": "Event"})
    return h["x-amzn-RequestId"]
t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(16) as ex: ids = list(ex.map(one, range(n)))
accepted_s = time.time() - t0
time.sleep(1.0)
before = json.loads(call("GET", "/_kumo/events/stats")[0])["outstanding"]
os.kill(p.pid, signal.SIGKILL); p.wait()
t1 = time.time()
p = start()
while json.loads(call("GET", "/_kumo/events/stats")[0])["outstanding"] > 0: time.sleep(0.1)
drain_s = time.time() - t1
starts = {}
token = None
while True:
    body = {"logGroupName": "/aws/lambda/slow", "filterPattern": "\"START RequestId\""}
    if token: body["nextToken"] = token
    out = json.loads(call("POST", "/", json.dumps(body).encode(), {"x-amz-target": "Logs_20140328.FilterLogEvents", "content-type": "application/x-amz-json-1.1"})[0])
    for e in out.get("events", []):
        rid = e["message"].split("RequestId: ")[1].split()[0]
        starts[rid] = starts.get(rid, 0) + 1
    token = out.get("nextToken")
    if not token: break
lost = [i for i in ids if i not in starts]
dups = sum(1 for i in ids if starts.get(i, 0) > 1)
print(f"{n} events accepted in {accepted_s:.1f}s; {before} outstanding at kill -9; after restart all done in {drain_s:.1f}s; lost {len(lost)}; run twice {dups}")
os.kill(p.pid, signal.SIGTERM); p.wait()
