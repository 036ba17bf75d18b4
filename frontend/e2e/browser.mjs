// What the browser scripts share: environment variables, headless system Chromium (nothing downloaded), a page that
// collects page errors, and full-page screenshots into ARTIFACTS_DIR.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

/** An environment variable, or `fallback`; throws naming the variable when neither exists. */
export const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`missing environment variable ${name}`);
  return v;
};

/** Launch Chromium and open one page; `tag` prefixes the step lines; `artifacts` is the screenshot directory. */
export const openBrowser = async (tag) => {
  const artifacts = resolve(env("ARTIFACTS_DIR", "test-artifacts/ui"));
  mkdirSync(artifacts, { recursive: true });
  const step = (msg) => console.log(`[${tag}] ${msg}`);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") console.log(`[browser] ${m.text()}`); });
  const shot = async (name) => {
    // Full-page shots of a scrolled page would paint the sticky top bar mid-page.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
    step(`screenshot ${name}.png`);
  };
  return { browser, page, problems, shot, step, artifacts };
};
