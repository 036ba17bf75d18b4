// What each role is offered, in headless Chromium against a real server (playwright-core, system chromium).
// A viewer gets a read-only UI; an operator may act on his own experiment but not on another's, and may not manage
// agents; a throttled login says how long to wait.
// Env: BASE_URL, PASSWORD, VIEWER, OPERATOR, OWN_EXPERIMENT, OTHER_EXPERIMENT, THROTTLED_USER, ARTIFACTS_DIR.
import { env, openBrowser } from "./browser.mjs";

const BASE_URL = env("BASE_URL").replace(/\/$/, "");
const PASSWORD = env("PASSWORD");
const VIEWER = env("VIEWER");
const OPERATOR = env("OPERATOR");
const OWN = env("OWN_EXPERIMENT");
const OTHER = env("OTHER_EXPERIMENT");
const THROTTLED_USER = env("THROTTLED_USER");

const { browser, page, problems, shot, step } = await openBrowser("ui-roles");

/** Fail when any of these buttons (or links) is on the page. */
const absent = async (what, names, role = "button") => {
  for (const name of names) {
    const n = await page.getByRole(role, { name, exact: true }).count();
    if (n > 0) throw new Error(`${what}: "${name}" (${role}) is offered`);
  }
};
/** Wait for each of these buttons (or links). */
const present = async (names, role = "button") => {
  for (const name of names) await page.getByRole(role, { name, exact: true }).first().waitFor({ timeout: 15_000 });
};

const logIn = async (username) => {
  await page.goto(`${BASE_URL}/`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Experiments" }).waitFor();
};
const logOut = async () => {
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("form", { name: "Log in" }).waitFor();
};
const openExperiment = async (id) => {
  await page.goto(`${BASE_URL}/experiments/${id}`);
  await page.locator(".job-card").first().waitFor({ timeout: 30_000 });
  await page.getByTestId("results-link").waitFor();
};
const openJob = async () => {
  await page.locator(".job-card").first().click();
  await page.getByRole("heading", { name: "Transition log" }).waitFor();
};
const openAgent = async () => {
  await page.getByRole("link", { name: "Agents" }).click();
  await page.locator("tr[data-agent]").first().click();
  await page.getByTestId("measured-peaks").waitFor();
  await page.getByRole("heading", { name: "Settings" }).waitFor();
};
const roleShown = async (expected) => {
  const role = (await page.getByTestId("user-role").innerText()).trim();
  if (role !== expected) throw new Error(`the header shows role "${role}", expected "${expected}"`);
};

const EXPERIMENT_ACTIONS = ["Rename", "Cancel experiment", "Delete"];
const JOB_ACTIONS = ["Cancel job", "Retry job"];
const AGENT_ACTIONS = ["Refresh", "Deactivate", "Activate", "Remove", "Save"];

let failed = false;
try {
  // 1. A viewer: every page reads, no write action anywhere.
  await logIn(VIEWER);
  await roleShown("viewer");
  await page.locator("table[aria-label='Experiments'] tbody tr").nth(1).waitFor();
  await absent("viewer, experiments", ["New experiment"], "link");
  await openExperiment(OWN);
  await page.getByTestId("read-only").waitFor();
  await absent("viewer, experiment", EXPERIMENT_ACTIONS);
  await openJob();
  await absent("viewer, job", JOB_ACTIONS);
  await shot("roles-01-viewer-experiment");
  await openAgent();
  await absent("viewer, agents", [...AGENT_ACTIONS, "Register agent", "Run hardware benchmark"]);
  if (await page.getByRole("form", { name: "Edit agent" }).count()) throw new Error("viewer: the agent edit form is offered");
  await shot("roles-02-viewer-agent");
  await page.goto(`${BASE_URL}/experiments/new`);
  await page.getByText("Your role cannot create experiments").waitFor();
  step("viewer: read-only UI");
  await logOut();

  // 2. An operator: his own experiment and its jobs are his to manage; another's are not; agents are not.
  await logIn(OPERATOR);
  await roleShown("operator");
  await present(["New experiment"], "link");
  await openExperiment(OWN);
  await present(["Rename", "Cancel experiment"]);
  if (await page.getByTestId("read-only").count()) throw new Error("operator: his own experiment is marked read only");
  await openJob();
  await present(["Cancel job"]);
  await page.getByRole("button", { name: "Rename", exact: true }).click();
  const rename = page.getByRole("form", { name: "Rename experiment" });
  await rename.locator('input[name="rename-name"]').fill("Renamed in the browser");
  await rename.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: /Renamed in the browser/ }).waitFor();
  await shot("roles-03-operator-own");
  step("operator: own experiment offers rename/cancel and job cancel; renamed");
  await openExperiment(OTHER);
  await page.getByTestId("read-only").waitFor();
  await absent("operator, another's experiment", EXPERIMENT_ACTIONS);
  await openJob();
  await absent("operator, another's job", JOB_ACTIONS);
  await shot("roles-04-operator-other");
  step("operator: another's experiment is read only");
  await openAgent();
  await present(["Run hardware benchmark"]);
  await absent("operator, agents", [...AGENT_ACTIONS, "Register agent"]);
  step("operator: may benchmark an agent, not manage it");
  await logOut();

  // 3. Too many failed logins for one user name: the form says how long to wait and holds the button.
  let throttled = false;
  for (let attempt = 1; attempt <= 6 && !throttled; attempt++) {
    await page.getByLabel("Username").fill(THROTTLED_USER);
    await page.getByLabel("Password").fill("not-the-password");
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/session/") && r.request().method() === "POST"),
      page.getByRole("button", { name: "Log in" }).click(),
    ]);
    throttled = answer.status() === 429;
    if (!throttled && answer.status() !== 400) throw new Error(`a wrong password was answered ${answer.status()}`);
  }
  if (!throttled) throw new Error("six failed logins were never throttled");
  await page.getByTestId("login-throttled").waitFor();
  const wait = await page.getByTestId("login-throttled").innerText();
  if (!/wait \d+ s before trying again/.test(wait)) throw new Error(`throttled login says: ${wait}`);
  if (!(await page.getByRole("button", { name: /Log in \(wait \d+ s\)/ }).isDisabled())) {
    throw new Error("the Log in button is not held while throttled");
  }
  await shot("roles-05-throttled");
  step(`throttled login: ${wait}`);

  if (problems.length) throw new Error(problems.join("\n"));
  step("all good");
} catch (e) {
  failed = true;
  console.error(`[ui-roles] FAILED: ${e instanceof Error ? e.stack : e}`);
  try { await shot("roles-failure"); } catch { /* the page may be gone */ }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
