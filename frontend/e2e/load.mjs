// A load sweep through the UI in headless Chromium (playwright-core, system chromium; nothing downloaded): the form's
// load section (a mistake named next to its field, the plan preview's points), the sweep running live, and the
// experiment page's comparison table, curves and a load point's distributions.
// Env: BASE_URL, USERNAME, PASSWORD, ENDPOINT_URL (an OpenAI-compatible /v1 the agent may reach), RATE_EXPERIMENT
// (a request-rate sweep over 20 req/s and inf), ARTIFACTS_DIR.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { env, openBrowser } from "./browser.mjs";

const BASE_URL = env("BASE_URL").replace(/\/$/, "");
const USERNAME = env("USERNAME");
const PASSWORD = env("PASSWORD");
const ENDPOINT_URL = env("ENDPOINT_URL");
const RATE_EXPERIMENT = env("RATE_EXPERIMENT");

const { browser, page, problems, shot, step, artifacts } = await openBrowser("ui-load");

let failed = false;
try {
  // 1. Log in.
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel("Username").fill(USERNAME);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Experiments" }).waitFor();
  step("logged in");

  // 2. The form: an OpenAI-compatible endpoint swept at three concurrency levels.
  await page.getByRole("link", { name: "New experiment" }).click();
  const form = page.getByRole("form", { name: "New experiment" });
  await form.locator('input[name="name"]').fill("Load sweep in the browser");
  await form.locator('input[name="model-0"]').fill("smollm2-135m-instruct");
  await form.locator('input[name="runtime-transformers"]').uncheck();
  await form.locator('input[name="runtime-openai"]').check();
  await form.locator('input[name="openai-base_url"]').fill(ENDPOINT_URL);
  await form.locator('input[name="openai-served_model"]').fill("served-model");
  await form.locator('input[name="load-enabled"]').check();
  const concurrency = form.locator('input[name="load-concurrency"]');
  await concurrency.fill("1, x, 4");
  const message = form.locator(".field", { has: page.locator('input[name="load-concurrency"]') }).locator(".field-errors");
  await message.getByText('concurrency[1]: must be a whole number between 1 and 4096, got "x"').waitFor();
  await page.getByTestId("plan-load").getByText("Load sweep not valid yet").waitFor();
  step("a wrong concurrency level is named next to its field and in the plan preview");
  await concurrency.fill("1, 2, 4");
  await form.locator('input[name="load-num-requests"]').fill("12");
  await form.locator('input[name="load-warmup"]').fill("2");
  await form.locator('input[name="load-input-tokens"]').fill("16");
  await form.locator('input[name="load-output-tokens"]').fill("8");
  await form.locator('input[name="load-slo-ttft"]').fill("2000");
  if (await message.count()) throw new Error(`the concurrency field still shows ${await message.innerText()}`);
  const preview = page.getByTestId("plan-load");
  await preview.getByText("Load sweep: 3 concurrency levels (1, 2, 4)").waitFor({ timeout: 30_000 });
  await preview.getByText(/12 requests \+ 2 warm-up per point; at most 42 requests per job/).waitFor();
  await page.getByTestId("plan-summary").filter({ hasText: /^1 job/ }).waitFor({ timeout: 30_000 });
  await shot("load-01-form");
  step("plan preview: 1 job, 3 load points, 42 requests");
  await form.getByRole("button", { name: "Create experiment" }).click();
  await page.waitForURL(/\/experiments\/\d+$/);
  const experimentId = Number(page.url().split("/").pop());
  step(`experiment ${experimentId} created`);

  // 3. The sweep runs; the page follows it live (no reload: a marker on window must survive).
  await page.evaluate(() => { window.__ruckusNoReload = true; });
  const panel = page.locator(".card.load-sweep");
  await panel.getByRole("heading", { name: "Serving under load" }).waitFor({ timeout: 30_000 });
  await panel.getByText("1, 2, 4", { exact: true }).waitFor();
  await page.locator(".job-card[data-status='completed']").waitFor({ timeout: 240_000 });
  // The job's update makes the page read the sweep again: its row gets figures.
  const row = panel.locator("table[aria-label='Load sweep comparison'] tbody tr[data-state='measured']").first();
  await row.waitFor({ timeout: 30_000 });
  if (!(await page.evaluate(() => window.__ruckusNoReload === true))) throw new Error("the page was reloaded");
  const points = (await row.getByTestId("points").innerText()).trim();
  if (points !== "3 / 3") throw new Error(`expected 3 / 3 points, the row says ${points}`);
  const goodput = (await row.getByTestId("max-goodput").innerText()).replace(/\s+/g, " ");
  if (!/^\d[\d.,]* at [124]$/.test(goodput)) throw new Error(`max goodput reads "${goodput}"`);
  const peak = (await row.getByTestId("peak").innerText()).replace(/\s+/g, " ");
  if (!/^\d[\d.,]* at [124]$/.test(peak)) throw new Error(`peak reads "${peak}"`);
  step(`completed live: max goodput ${goodput} req/s, peak ${peak} output tok/s`);

  const csv = await panel.getByRole("link", { name: "Points CSV" }).getAttribute("href");
  const exported = await page.request.get(`${BASE_URL}${csv}`);
  const rows = (await exported.text()).trim().split("\n");
  if (!exported.ok() || rows.length !== 4) throw new Error(`points CSV: ${exported.status()}, ${rows.length} lines`);
  step("points CSV: a header and 3 points");

  // 4. The curves are drawn; the latency chart follows its settings.
  await panel.locator('[data-chart="Throughput vs latency"] canvas').waitFor({ timeout: 30_000 });
  await panel.locator('[data-chart="Load vs goodput"] canvas').waitFor({ timeout: 30_000 });
  await panel.getByLabel("Latency", { exact: true }).selectOption("itl_s");
  await panel.getByLabel("Statistic", { exact: true }).selectOption("median");
  await panel.locator('[data-chart="Throughput vs latency"] canvas').waitFor();

  // 5. A load point's distributions, read on demand.
  const cell = panel.getByLabel("Cell", { exact: true });
  const first = await cell.locator("option").nth(1).getAttribute("value");
  await cell.selectOption(first ?? "");
  await panel.getByLabel("Load point", { exact: true }).selectOption({ label: "4" });
  await panel.locator('[data-chart="TTFT distribution"] canvas').waitFor({ timeout: 30_000 });
  await panel.locator('[data-chart="ITL distribution"] canvas').waitFor({ timeout: 30_000 });
  const counts = await panel.getByTestId("load-distributions").locator("h3").allTextContents();
  step(`distributions at concurrency 4: ${counts.join("; ")}`);
  if (!counts.some((t) => t.startsWith("TTFT") && t.includes("(12 values)"))) {
    throw new Error(`expected 12 TTFT values at the point, got ${counts.join("; ")}`);
  }
  await page.waitForTimeout(500);
  await shot("load-02-experiment");
  await panel.screenshot({ path: join(artifacts, "load-03-panel.png") });
  writeFileSync(join(artifacts, "load-experiment.json"), JSON.stringify({ experiment: experimentId }));

  // 6. A request-rate sweep: its rates named in req/s, "inf" for all at once.
  await page.goto(`${BASE_URL}/experiments/${RATE_EXPERIMENT}`);
  const rates = page.locator(".card.load-sweep");
  await rates.getByText("20 req/s, inf", { exact: true }).waitFor({ timeout: 30_000 });
  await page.locator(".job-card[data-status='completed']").waitFor({ timeout: 240_000 });
  const rateRow = rates.locator("table[aria-label='Load sweep comparison'] tbody tr[data-state]").first();
  await rateRow.getByTestId("points").getByText("2 / 2").waitFor({ timeout: 30_000 });
  const ratePeak = (await rateRow.getByTestId("peak").innerText()).replace(/\s+/g, " ");
  if (!/ at (20 req\/s|inf)$/.test(ratePeak)) throw new Error(`the rate sweep's peak reads "${ratePeak}"`);
  await rates.locator('[data-chart="Load vs goodput"] canvas').waitFor({ timeout: 30_000 });
  step(`rate sweep: peak ${ratePeak}`);
  await page.waitForTimeout(500);
  await shot("load-04-rate-sweep");

  if (problems.length) throw new Error(problems.join("\n"));
  step("all good");
} catch (e) {
  failed = true;
  console.error(`[ui-load] FAILED: ${e instanceof Error ? e.stack : e}`);
  try { await shot("load-failure"); } catch { /* the page may be gone */ }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
