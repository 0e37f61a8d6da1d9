'use strict';
// Kumo managed-runtime bootstrap for Node.js 18+ (Lambda Runtime API 2018-06-01).
//
// Kumo starts it as `node bootstrap.js` with cwd = $LAMBDA_TASK_ROOT and the
// usual Lambda environment.  CommonJS, Node standard library only.
//
// Flow: load the handler once (reporting failures to /runtime/init/error and
// exiting 1), then loop forever: GET /next -> call handler -> POST /response
// or /error.  console.* writes one line per call to stdout.

const fs = require('fs');
const http = require('http');
const path = require('path');
const url = require('url');
const util = require('util');

const env = process.env;
const RUNTIME = '/2018-06-01/runtime';

// ---------------------------------------------------------------------------
// Runtime API client: one keep-alive socket, Nagle disabled.

const api = env.AWS_LAMBDA_RUNTIME_API || '';
const colon = api.lastIndexOf(':');
const HOST = (colon > 0 ? api.slice(0, colon) : api).replace(/^\[(.*)\]$/, '$1');
const PORT = colon > 0 ? Number(api.slice(colon + 1)) : 80;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const tunedSockets = new WeakSet();

function request(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port: PORT, method, path: p, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode,
        headers: res.headers,
        body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
      }));
      res.on('error', reject);
    });
    req.on('socket', (s) => {
      // Small messages: without TCP_NODELAY, Nagle + delayed ACK add latency.
      if (!tunedSockets.has(s)) { tunedSockets.add(s); s.setNoDelay(true); }
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function call(method, p, body, headers) {
  try {
    return await request(method, p, body, headers);
  } catch (e) {
    return request(method, p, body, headers); // reconnect once: the agent opens a new socket
  }
}

async function post(p, body, errorType) {
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  // Header values must be printable ASCII; error names may not be.
  if (errorType !== undefined) headers['Lambda-Runtime-Function-Error-Type'] = String(errorType).replace(/[^\x20-\x7e]/g, '?');
  const res = await call('POST', p, body, headers);
  if (res.status !== 202) {
    // e.g. 413 for an oversized payload; Kumo reports it, we keep going.
    process.stderr.write(`[kumo-runtime] POST ${p} returned HTTP ${res.status}: ${res.body.toString().slice(0, 500)}\n`);
  }
}

// ---------------------------------------------------------------------------
// Logging: console.* -> one synchronous line on stdout per call.

let currentRequestId; // undefined outside an invocation, printed as such (like Lambda)
const LEVELS = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, FATAL: 5 };
const minLevel = LEVELS[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || 0;
const pause = new Int32Array(new SharedArrayBuffer(4));

function writeOut(text) {
  // Synchronous writes keep console output ordered with respect to
  // /response and survive process.exit().  If someone made fd 1 non-blocking
  // and the pipe is full, wait a millisecond and retry instead of losing data.
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') return; // stdout gone (EPIPE): nothing useful to do
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

function logLine(level, message) {
  writeOut(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message.replace(/\n/g, '\r')}\n`);
}

function patchConsole() {
  const methods = { trace: 'TRACE', debug: 'DEBUG', log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', fatal: 'FATAL' };
  for (const [name, level] of Object.entries(methods)) {
    console[name] = LEVELS[level] < minLevel ? () => {} : (...args) => logLine(level, util.format(...args));
  }
}

// ---------------------------------------------------------------------------
// Errors.

function isError(e) {
  return e instanceof Error || util.types.isNativeError(e);
}

// Lambda's error object; thrown non-Errors are typed by typeof ("string" ...).
function errorBody(err) {
  if (isError(err)) {
    return {
      errorType: err.name || 'Error',
      errorMessage: String(err.message),
      trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  let message;
  try {
    message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch (e) {
    message = util.inspect(err);
  }
  return { errorType: typeof err, errorMessage: message, trace: [] };
}

function withType(errorType, errorMessage, err) {
  return { errorType, errorMessage, trace: isError(err) && err.stack ? err.stack.split('\n') : [] };
}

function logError(label, body) {
  const shown = { errorType: body.errorType, errorMessage: body.errorMessage, stack: body.trace };
  logLine('ERROR', `${label} \t${JSON.stringify(shown)}`);
}

let initDone = false;
let inFlight; // request id whose result has not been posted yet

async function fail(label, body, exitCode) {
  logError(label, body);
  try {
    if (!initDone) await post(`${RUNTIME}/init/error`, JSON.stringify(body), body.errorType);
    else if (inFlight) await post(`${RUNTIME}/invocation/${inFlight}/error`, JSON.stringify(body), body.errorType);
  } catch (e) {
    process.stderr.write(`[kumo-runtime] could not report error: ${e}\n`);
  }
  if (exitCode !== undefined) process.exit(exitCode);
}

// Stray failures can't be tied to a handler's promise: report them against the
// current invocation (or init) and exit, as Lambda does.
let dying = false;
process.on('unhandledRejection', (reason) => {
  if (dying) return;
  dying = true;
  let message;
  try { message = String(reason); } catch (e) { message = util.inspect(reason); }
  fail('Unhandled Promise Rejection', withType('Runtime.UnhandledPromiseRejection', message, reason), 1);
});
process.on('uncaughtException', (err) => {
  if (!dying) { dying = true; fail('Uncaught Exception', errorBody(err), 1); }
});

// ---------------------------------------------------------------------------
// Loading the handler.

class InitError extends Error {
  constructor(errorType, message, cause) {
    super(message);
    this.errorType = errorType;
    this.cause = cause;
  }
}

function isEsmFile(file) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  // A .js file is ESM when the nearest package.json says "type": "module".
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type === 'module';
    } catch (e) {
      if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR' && e.code !== 'EISDIR') return false;
    }
    if (path.dirname(dir) === dir) return false;
  }
}

function resolveModule(base) {
  for (const ext of ['.js', '.mjs', '.cjs']) {
    if (fs.existsSync(base + ext)) return base + ext;
  }
  if (fs.existsSync(base) && fs.statSync(base).isDirectory()) {
    const esmIndex = path.join(base, 'index.mjs');
    return fs.existsSync(esmIndex) ? esmIndex : base; // require() applies "main" / index.js rules
  }
  return undefined;
}

async function loadModule(file) {
  const viaImport = () => import(url.pathToFileURL(file).href);
  try {
    if (fs.statSync(file).isFile() && isEsmFile(file)) return await viaImport();
    try {
      return require(file);
    } catch (e) {
      if (e && e.code === 'ERR_REQUIRE_ESM') return await viaImport();
      throw e;
    }
  } catch (e) {
    if (e instanceof SyntaxError) throw new InitError('Runtime.UserCodeSyntaxError', String(e), e);
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new InitError('Runtime.ImportModuleError', String(e), e);
    }
    throw e; // reported with the error's own name and message
  }
}

async function loadHandler(taskRoot, handlerString) {
  // "dir/sub/file.export.nested": directory part, then module + export path.
  const slash = handlerString.lastIndexOf('/');
  const dir = handlerString.slice(0, slash + 1);
  const match = /^([^.]*)\.(.*)$/.exec(handlerString.slice(slash + 1));
  if (!match) throw new InitError('Runtime.MalformedHandlerName', `Bad handler ${handlerString}`);
  const [, moduleName, exportPath] = match;

  const file = resolveModule(path.resolve(taskRoot, dir + moduleName));
  if (!file) {
    throw new InitError('Runtime.ImportModuleError', `Error: Cannot find module '${dir + moduleName}'`);
  }
  const mod = await loadModule(file);
  const lookup = (root) => exportPath.split('.').reduce((o, k) => (o == null ? undefined : o[k]), root);
  let fn = lookup(mod);
  if (typeof fn !== 'function' && mod && mod.default) fn = lookup(mod.default); // CJS seen through import()
  if (typeof fn !== 'function') {
    throw new InitError('Runtime.HandlerNotFound', `${handlerString} is undefined or not exported`);
  }
  return fn;
}

// ---------------------------------------------------------------------------
// Invoking the handler.

let pending; // settle function of the invocation in progress

// If the event loop empties before the handler called back (or settled its
// promise), nothing can finish it any more: answer null (Lambda's behaviour
// for callback handlers) instead of letting the process exit mid-invocation.
process.on('beforeExit', () => { if (pending) pending(false, null); });

function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (failed, value) => {
      if (settled) return;
      settled = true;
      pending = undefined;
      if (failed) reject(value); else resolve(value);
    };
    pending = settle;
    const callback = (err, result) => (err == null ? settle(false, result) : settle(true, err));
    context.done = callback;
    context.succeed = (result) => settle(false, result);
    context.fail = (err) => settle(true, err == null ? 'handled' : err);

    let ret;
    try {
      ret = handler(event, context, callback);
    } catch (e) {
      settle(true, e);
      return;
    }
    if (ret && typeof ret.then === 'function') {
      ret.then((r) => settle(false, r), (e) => settle(true, e));
    } else if (handler.length < 3 && ret !== undefined) {
      settle(false, ret); // plain synchronous return value
    } // else: wait for the callback
  });
}

function jsonHeader(value) {
  if (!value) return undefined;
  try { return JSON.parse(value); } catch (e) { return undefined; }
}

const STATIC = {
  functionName: env.AWS_LAMBDA_FUNCTION_NAME,
  functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
  memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
  logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
};

async function serve(handler) {
  for (;;) {
    const { headers, body } = await call('GET', `${RUNTIME}/invocation/next`);
    if (body === undefined) throw new Error('no response from /invocation/next');
    const id = headers['lambda-runtime-aws-request-id'];
    currentRequestId = id;
    inFlight = id;
    const traceId = headers['lambda-runtime-trace-id'];
    if (traceId) env._X_AMZN_TRACE_ID = traceId; else delete env._X_AMZN_TRACE_ID;

    let outcome;
    let event;
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch (e) {
      outcome = withType('Runtime.UnmarshalError', `Unable to unmarshal input: ${e.message}`, e);
    }
    let payload;
    if (!outcome) {
      const deadline = Number(headers['lambda-runtime-deadline-ms']) || 0;
      const context = {
        ...STATIC,
        awsRequestId: id,
        invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
        identity: jsonHeader(headers['lambda-runtime-cognito-identity']),
        clientContext: jsonHeader(headers['lambda-runtime-client-context']),
        callbackWaitsForEmptyEventLoop: true, // accepted; Kumo responds as soon as the result is known
        getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
      };
      try {
        const result = await invoke(handler, event, context);
        try {
          payload = JSON.stringify(result === undefined ? null : result) ?? 'null';
        } catch (e) {
          outcome = withType('Runtime.MarshalError', `Unable to stringify response body: ${e.message}`, e);
        }
      } catch (err) {
        outcome = errorBody(err);
      }
    }
    if (dying) return; // a stray rejection/exception already reported this invocation
    if (outcome) {
      logError('Invoke Error', outcome);
      await post(`${RUNTIME}/invocation/${id}/error`, JSON.stringify(outcome), outcome.errorType);
    } else {
      await post(`${RUNTIME}/invocation/${id}/response`, payload);
    }
    inFlight = undefined;
  }
}

async function main() {
  if (!api) {
    process.stderr.write('[kumo-runtime] AWS_LAMBDA_RUNTIME_API is not set\n');
    process.exit(1);
  }
  patchConsole();
  let handler;
  try {
    handler = await loadHandler(env.LAMBDA_TASK_ROOT || process.cwd(), env._HANDLER || '');
  } catch (e) {
    const body = e instanceof InitError ? withType(e.errorType, e.message, e.cause || e) : errorBody(e);
    dying = true;
    await fail('Uncaught Exception', body, 1);
    return;
  }
  initDone = true;
  try {
    await serve(handler);
  } catch (e) { // the Runtime API went away or misbehaved
    process.stderr.write(`[kumo-runtime] fatal: ${e && e.stack}\n`);
    process.exit(1);
  }
}

main();
