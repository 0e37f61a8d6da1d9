// Drives Kumo's dashboard in headless Chromium (Debian's /usr/bin/chromium)
// through playwright-core: sign in, open the overview, open a function, check
// its SVG charts drew, invoke from the Test page and see the invocation in the
// list and in the live tail. Exit status 0 when every step passed.
//
// Environment: KUMO_URL (http://127.0.0.1:PORT), KUMO_KEY_ID, KUMO_SECRET,
// KUMO_FUNCTION; optional KUMO_SCREENSHOTS (a directory: one PNG per page),
// CHROMIUM (default /usr/bin/chromium).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.KUMO_URL;
const keyId = process.env.KUMO_KEY_ID;
const secret = process.env.KUMO_SECRET;
const fn = process.env.KUMO_FUNCTION;
const shots = process.env.KUMO_SCREENSHOTS || "";
if (!base || !keyId || !secret || !fn) {
  console.error("usage: KUMO_URL=... KUMO_KEY_ID=... KUMO_SECRET=... KUMO_FUNCTION=... node dashboard.mjs");
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), "kumo-chromium-"));
let context;

function step(name) {
  console.log(`step: ${name}`);
}

async function shot(page, name) {
  if (!shots) return;
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

async function main() {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 860 },
    colorScheme: "light",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  step("sign in");
  await page.goto(`${base}/_kumo/dashboard`);
  if (!page.url().endsWith("/_kumo/dashboard/signin")) throw new Error(`expected the sign-in page, got ${page.url()}`);
  await shot(page, "signin");
  await page.fill("input[name=access_key_id]", keyId);
  await page.fill("input[name=secret_access_key]", secret);
  await Promise.all([page.waitForURL(`${base}/_kumo/dashboard`), page.click("button[type=submit]")]);

  step("overview");
  await page.waitForSelector("h1:text('Overview')");
  const link = page.locator(`#functions a:text-is("${fn}")`);
  if ((await link.count()) !== 1) throw new Error(`the overview does not list ${fn}`);
  await shot(page, "overview");

  step("function page with charts");
  await Promise.all([page.waitForURL(`**/functions/${encodeURIComponent(fn)}`), link.click()]);
  const drawn = await page.$$eval("figure.chart svg", (svgs) =>
    svgs.filter((svg) => {
      const box = svg.getBoundingClientRect();
      const marks = [...svg.querySelectorAll("path, rect")].filter(
        (m) => (m.getAttribute("d") || "").length > 4 || Number(m.getAttribute("height") || 0) > 0,
      );
      return box.width > 100 && box.height > 50 && marks.length > 0;
    }).length,
  );
  if (drawn < 4) throw new Error(`only ${drawn} charts drew paths on the function page`);
  const rows = await page.locator("#recent tr[data-request-id]").count();
  if (rows < 1) throw new Error("the function page lists no recent invocations");
  await shot(page, "function");

  step("invoke from the Test page");
  await Promise.all([page.waitForURL(`**/functions/${encodeURIComponent(fn)}/test`), page.click("a.button:text('Test')")]);
  const marker = `browser-${Date.now()}`;
  await page.fill("#payload", JSON.stringify({ x: marker }));
  await page.click("#invoke");
  const result = await page.waitForSelector("#result section.result[data-request-id]");
  const requestId = await result.getAttribute("data-request-id");
  if (!(await result.textContent()).includes(marker)) throw new Error("the result does not show the function's answer");
  step(`new invocation ${requestId} in the list`);
  await page.waitForSelector(`#recent tr[data-request-id="${requestId}"]`);
  step("and in the live tail");
  await page.waitForFunction(
    (id) => (document.getElementById("tail")?.textContent || "").includes(`START RequestId: ${id}`),
    requestId,
    { timeout: 10000 },
  );
  await shot(page, "test");

  step("invocation page");
  await Promise.all([page.waitForURL(`**/invocations/${requestId}`), page.click(`#result a.mono`)]);
  await page.waitForSelector("pre.tail .report");
  await shot(page, "invocation");

  step("log search");
  await page.goto(`${base}/_kumo/dashboard/logs?pattern=${encodeURIComponent(marker)}&window=15m`);
  const hits = await page.locator("table.logs tbody tr").count();
  if (hits < 1) throw new Error("the log search found nothing for the invoked marker");
  await shot(page, "logs");

  if (errors.length) throw new Error(`script errors on the pages: ${errors.join("; ")}`);
  console.log("dashboard browser test: ok");
}

main()
  .then(() => 0, (e) => {
    console.error(`dashboard browser test FAILED: ${e && e.stack ? e.stack : e}`);
    return 1;
  })
  .then(async (code) => {
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    process.exit(code);
  });
