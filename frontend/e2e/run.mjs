// End-to-end walk through the UI in headless Chromium (playwright-core, system chromium; nothing downloaded).
// Env: BASE_URL, USERNAME, PASSWORD, AGENT_URL, AGENT_TOKEN, ARTIFACTS_DIR (default test-artifacts/ui).
import { join } from "node:path";
import { env, openBrowser } from "./browser.mjs";

const BASE_URL = env("BASE_URL").replace(/\/$/, "");
const USERNAME = env("USERNAME");
const PASSWORD = env("PASSWORD");
const AGENT_URL = env("AGENT_URL");
const AGENT_TOKEN = env("AGENT_TOKEN");

const { browser, page, problems, shot, step, artifacts } = await openBrowser("ui-e2e");

/** Poll the experiment page's job cards until all completed (fails on a failed job or after `timeoutMs`). */
const watchJobs = async (label, timeoutMs) => {
  const seen = new Set();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const statuses = await page.locator(".job-card").evaluateAll((els) => els.map((e) => e.getAttribute("data-status")));
    statuses.forEach((s) => seen.add(s));
    if (statuses.length > 0 && statuses.every((s) => s === "completed")) return seen;
    if (statuses.some((s) => s === "failed" || s === "cancelled" || s === "timed_out")) {
      await shot(`${label}-failed`);
      throw new Error(`${label}: a job ended as ${statuses.join(", ")}`);
    }
    if (Date.now() > deadline) throw new Error(`${label} did not complete in time (seen: ${[...seen].join(", ")})`);
    await page.waitForTimeout(250);
  }
};

let failed = false;
try {
  // 1. Log in.
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel("Username").fill(USERNAME);
  await page.getByLabel("Password").fill(PASSWORD);
  await shot("01-login");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Experiments" }).waitFor();
  step("logged in");

  // 2. Register the agent by URL; its status arrives live.
  await page.getByRole("link", { name: "Agents" }).click();
  await page.getByRole("heading", { name: "Agents" }).waitFor();
  const form = page.getByRole("form", { name: "Register agent" });
  if (!(await form.isVisible())) await page.getByRole("button", { name: "Register agent" }).click();
  await form.locator('input[name="url"]').fill(AGENT_URL);
  await form.locator('input[name="token"]').fill(AGENT_TOKEN);
  await form.locator('input[name="labels"]').fill("ui-test");
  await form.getByRole("button", { name: "Register agent" }).click();
  const row = page.locator("tr[data-agent]").first();
  await row.locator('[data-status="online"]').waitFor({ timeout: 60_000 });
  step("agent registered and online");
  await row.click();
  await page.getByRole("heading", { name: "GPUs" }).waitFor();
  await page.getByRole("heading", { name: "Models" }).waitFor();
  await page.getByTestId("measured-peaks").getByText("No measured peaks yet").waitFor();
  await shot("02-agents");

  // 3. Create an experiment, with the live plan preview.
  await page.getByRole("link", { name: "Experiments" }).click();
  await page.getByRole("link", { name: "New experiment" }).click();
  const exp = page.getByRole("form", { name: "New experiment" });
  // The hardware benchmark needs no model: the models section goes, only the hardware runtime is offered.
  await exp.getByText("Hardware benchmark", { exact: true }).click();
  await exp.locator('input[name="hw-quick"]').waitFor();
  if (await exp.locator('input[name="model-0"]').count()) throw new Error("models shown for a task without a model");
  const offered = await exp.locator('input[name^="runtime-"]').evaluateAll((els) => els.map((e) => e.getAttribute("name")));
  if (offered.join() !== "runtime-hardware") throw new Error(`runtimes offered for the benchmark: ${offered.join()}`);
  await page.getByTestId("plan-summary").filter({ hasText: /^1 job/ }).waitFor({ timeout: 30_000 });
  await page.locator(".plan td", { hasText: "hardware" }).waitFor({ timeout: 30_000 });
  await shot("03-new-benchmark");
  step("benchmark form: no models, hardware runtime only, plan 1 job");
  await exp.getByText("Wikipedia summarization", { exact: true }).click();
  await exp.locator('input[name="num_samples"]').waitFor();
  const llmRuntimes = await exp.locator('input[name^="runtime-"]').evaluateAll((els) => els.map((e) => e.getAttribute("name")));
  if (llmRuntimes.includes("runtime-hardware")) throw new Error("the hardware runtime is offered for a model task");
  await exp.locator('input[name="name"]').fill("UI smoke test");
  await exp.locator('input[name="num_samples"]').fill("2");
  await exp.locator('input[name="max_new_tokens"]').fill("12");
  await exp.locator('input[name="model-0"]').fill("smollm2-135m-instruct");
  await exp.locator('input[name="runs_per_job"]').fill("2");
  await page.getByTestId("plan-summary").filter({ hasText: /^1 job/ }).waitFor({ timeout: 30_000 });
  await page.locator(".plan td", { hasText: "smollm2-135m-instruct" }).waitFor({ timeout: 30_000 });
  step("plan preview: 1 job");
  await shot("03-new-experiment");
  await exp.getByRole("button", { name: "Create experiment" }).click();
  await page.waitForURL(/\/experiments\/\d+$/);
  step(`experiment created: ${page.url()}`);

  // 4. Watch it complete live (no reload: a marker on window must survive).
  const llmExperimentUrl = page.url();
  await page.evaluate(() => { window.__ruckusNoReload = true; });
  await page.getByTestId("live-state").filter({ hasText: "live" }).waitFor({ timeout: 30_000 });
  const seen = await watchJobs("04-experiment", 300_000);
  await page.locator("h1 [data-status='completed']").waitFor({ timeout: 30_000 });
  if (!(await page.evaluate(() => window.__ruckusNoReload === true))) throw new Error("the page was reloaded");
  step(`completed live; job states seen: ${[...seen].join(" → ")}`);
  await page.locator(".job-card").first().click();
  await page.getByRole("heading", { name: "Transition log" }).waitFor();
  await shot("04-experiment");

  // 5. Results: charts, comparison matrix, outputs next to references, export links.
  await page.getByTestId("results-link").click();
  await page.getByRole("table", { name: "Comparison matrix" }).waitFor({ timeout: 30_000 });
  await page.locator("[data-chart] canvas").nth(3).waitFor({ timeout: 30_000 });
  const charts = await page.locator("[data-chart]").count();
  if (charts < 4) throw new Error(`expected 4 charts, found ${charts}`);
  await page.getByTestId("sample").first().waitFor({ timeout: 30_000 });
  const csv = await page.getByRole("link", { name: "Export CSV" }).getAttribute("href");
  const res = await page.request.get(`${BASE_URL}${csv}`);
  if (!res.ok() || !(await res.text()).includes("run_index")) throw new Error(`CSV export failed: ${res.status()}`);
  step(`results: ${charts} charts, samples, CSV export ok`);
  await page.getByRole("table", { name: "Efficiency" }).waitFor();
  await page.locator('[data-chart^="telemetry"], [data-testid="telemetry-empty"]').first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(500);
  await shot("05-results");

  // 6. Measure the agent's peaks from its details panel (quick hardware benchmark, 3 runs).
  await page.getByRole("link", { name: "Agents" }).click();
  await page.locator("tr[data-agent]").first().click();
  const peaks = page.getByTestId("measured-peaks");
  await peaks.waitFor();
  if (!(await peaks.locator('input[name="benchmark-quick"]').isChecked())) await peaks.locator('input[name="benchmark-quick"]').check();
  await peaks.getByRole("button", { name: "Run hardware benchmark" }).click();
  await page.waitForURL(/\/experiments\/\d+$/);
  step(`hardware benchmark started: ${page.url()}`);
  await page.getByRole("heading", { name: /hardware benchmark: / }).waitFor();
  const benchStart = Date.now();
  await watchJobs("06-benchmark", 240_000);
  await page.locator("h1 [data-status='completed']").waitFor({ timeout: 30_000 });
  step(`hardware benchmark completed in ${((Date.now() - benchStart) / 1000).toFixed(0)} s`);
  const benchmarkUrl = page.url();

  // 7. The peaks section shows the measured figures (Refresh fetches the agent's capabilities at once).
  await page.getByRole("link", { name: "Agents" }).click();
  await page.locator("tr[data-agent]").first().click();
  await page.getByRole("button", { name: "Refresh", exact: true }).click();
  await page.getByRole("button", { name: "Refresh", exact: true }).waitFor({ timeout: 15_000 });
  if (await page.locator(".actions-row [role=alert]").count()) {
    throw new Error(`refresh failed: ${await page.locator(".actions-row [role=alert]").innerText()}`);
  }
  step("capabilities refreshed");
  const bandwidth = page.getByRole("table", { name: "Memory bandwidth peaks" });
  await bandwidth.waitFor({ timeout: 30_000 });
  const figures = await bandwidth.locator("tbody tr").allInnerTexts();
  if (!figures.some((t) => /\d.*GB\/s/.test(t))) throw new Error(`no GB/s figure in the peaks: ${figures.join(" | ")}`);
  step(`measured peaks: ${figures.map((t) => t.replace(/\s+/g, " ")).join("; ")}`);
  await page.waitForTimeout(300);
  await shot("06-agent-peaks");
  await page.getByTestId("measured-peaks").screenshot({ path: join(artifacts, "06-agent-peaks-panel.png") });

  // 8. The benchmark's results compare figures with their units; runs carry telemetry.
  await page.goto(`${benchmarkUrl}/results`);
  await page.getByRole("table", { name: "Comparison matrix" }).waitFor({ timeout: 30_000 });
  const selected = await page.locator('select[name="comparison-metric"]').inputValue();
  if (!selected.startsWith("bandwidth_gbps.")) throw new Error(`benchmark comparison starts on ${selected}`);
  await page.getByRole("table", { name: "Comparison matrix" }).getByText("GB/s").first().waitFor();
  await page.locator('[data-chart^="telemetry"], [data-testid="telemetry-empty"]').first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(500);
  await shot("07-benchmark-results");

  // 9. The earlier LLM experiment, now against measured peaks: a % of peak bandwidth.
  await page.goto(`${llmExperimentUrl}/results`);
  const eff = page.getByRole("table", { name: "Efficiency" });
  await eff.waitFor({ timeout: 30_000 });
  const bw = (await eff.getByTestId("efficiency-bandwidth").first().innerText()).replace(/\s+/g, " ");
  step(`efficiency: ${bw}`);
  if (!/\d%/.test(bw)) throw new Error(`no % of peak bandwidth after the benchmark: ${bw}`);
  await eff.scrollIntoViewIfNeeded();
  await page.waitForTimeout(500);
  await shot("08-results-efficiency");
  await page.locator(".card.efficiency").screenshot({ path: join(artifacts, "08-efficiency-panel.png") });

  if (problems.length) throw new Error(problems.join("\n"));
  step("all good");
} catch (e) {
  failed = true;
  console.error(`[ui-e2e] FAILED: ${e instanceof Error ? e.stack : e}`);
  try { await shot("failure"); } catch { /* the page may be gone */ }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
