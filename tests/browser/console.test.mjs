// The admin console in a real browser: Debian's chromium driven by playwright-core, against a
// real `tessera serve` started by tests/browser/run.sh (TESSERA_URL, TESSERA_ADMIN_APIKEY).
// The tests click and type as a person does; the objects they need and do not test (accounts,
// a user with TOTP, members with a role) are made through the admin API with fetch, and what
// the console shows once (an API key) is used where it matters: at POST /identity/token.
//
// Every page of every test is watched for CSP violations (the `securitypolicyviolation` event
// and chromium's console errors), script errors and requests to anything but the server; the
// browser resolves no host but 127.0.0.1. A failing test leaves a screenshot of each open page
// in TESSERA_BROWSER_FAILURES; TESSERA_SCREENSHOTS=<dir> also writes the main pages' screenshots
// that docs/console.md shows.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.TESSERA_URL;
const ADMIN_KEY = process.env.TESSERA_ADMIN_APIKEY;
const FAILURES = process.env.TESSERA_BROWSER_FAILURES || "";
const SCREENSHOTS = process.env.TESSERA_SCREENSHOTS || "";
if (!BASE || !ADMIN_KEY) {
  throw new Error("run through tests/browser/run.sh (TESSERA_URL, TESSERA_ADMIN_APIKEY)");
}
const ORIGIN = new URL(BASE).origin;

// ---- the admin API and the token endpoint, from node ----------------------------------------

async function tokenOf(apikey) {
  const response = await fetch(`${BASE}/identity/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "urn:ibm:params:oauth:grant-type:apikey", apikey }),
  });
  return { status: response.status, body: await response.json() };
}

let adminToken;
async function api(method, path, body, token = adminToken) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`${method} ${path}: ${response.status} ${text}`);
  }
  return text ? JSON.parse(text) : null;
}

/** A service account of `account` bound to `role` there, and an API key of it. */
async function member(account, role, name) {
  const sa = await api("POST", "/v1/service_accounts", { name, account_id: account });
  await api("POST", "/v1/access_bindings", {
    subject_iam_id: sa.iam_id,
    role,
    resource: `account/${account}`,
  });
  const key = await api("POST", "/v1/api_keys", { name: "browser", owner_iam_id: sa.iam_id });
  return { sa, apikey: key.apikey };
}

// ---- RFC 6238 (TOTP: HMAC-SHA1, 6 digits, 30-second steps), RFC 4648 base32 -----------------

function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of text.replace(/=+$/, "").toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${char}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}

test("the TOTP code generator gives RFC 6238's test vector", () => {
  // RFC 6238 appendix B, SHA1, T = 59 s: 94287082 (8 digits), so 287082 with 6.
  const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
  assert.equal(totp(secret, Math.floor(59 / 30)), "287082");
});

// ---- the browser ----------------------------------------------------------------------------

let browser;
let team; // an account for the objects the tests create
const contexts = [];
/** What every page reported: CSP violations, script errors, requests elsewhere. */
const problems = [];

before(async () => {
  adminToken = (await tokenOf(ADMIN_KEY)).body.access_token;
  assert.ok(adminToken, "the bootstrap administrator's token");
  team = (await api("POST", "/v1/accounts", { name: "browser-team" })).id;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      // No network beyond the server: no host resolves but 127.0.0.1.
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--no-default-browser-check",
    ],
  });
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  if (browser) await browser.close();
});

/** A fresh browser profile (cookies of its own), `phone`-sized or desktop. */
async function newContext(phone = false) {
  const context = await browser.newContext(
    phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 860 } },
  );
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: ORIGIN });
  // The listener runs in the page; its reports come back through the exposed binding. Both are
  // installed by the browser (not by an inline script), so the page's CSP does not block them.
  await context.exposeBinding("__reportCsp", ({ page }, report) => {
    problems.push(`CSP violation on ${page.url()}: ${report}`);
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__reportCsp(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
    });
  });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${ORIGIN}/`) || url.startsWith("data:")) return route.continue();
    problems.push(`a request beyond the server: ${url}`);
    return route.abort();
  });
  context.on("page", (page) => watch(page));
  // Every wait is for a page of a local server: 20 s is long even on CI's loaded 2 cores (a
  // password sign-in runs Argon2id unoptimised in the debug binary), and a failure shows sooner
  // than after playwright's 30 s.
  context.setDefaultTimeout(20_000);
  contexts.push(context);
  return context;
}

function watch(page) {
  page.on("console", (message) => {
    // Chromium logs every 4xx page it loads ("Failed to load resource: … 403"): the tests ask
    // for refusals on purpose and check their status themselves.
    const refusal = /^Failed to load resource: the server responded with a status of 4\d\d/;
    if (message.type() === "error" && !refusal.test(message.text())) {
      problems.push(`console error on ${page.url()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`script error on ${page.url()}: ${error.message}`));
}

/**
 * One of the main pages: checks its layout (assertLayout), and saves a screenshot of it for
 * docs/console.md when TESSERA_SCREENSHOTS is set.
 */
async function screenshot(page, name) {
  await assertLayout(page);
  if (!SCREENSHOTS) return;
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * A browser test: `body` gets a function making fresh contexts. On failure every open page of
 * those contexts is saved to TESSERA_BROWSER_FAILURES; after the body, the pages must have
 * reported no CSP violation, script error or outside request.
 */
function browserTest(name, body) {
  test(name, async () => {
    const mine = [];
    const open = async (phone) => {
      const context = await newContext(phone);
      mine.push(context);
      return context.newPage();
    };
    const reported = problems.length;
    try {
      await body(open);
      assert.deepEqual(problems.slice(reported), [], "the pages reported problems");
    } catch (error) {
      if (FAILURES) {
        mkdirSync(FAILURES, { recursive: true });
        const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
        let n = 0;
        for (const context of mine) {
          for (const page of context.pages()) {
            n += 1;
            const path = join(FAILURES, `${slug}-${n}.png`);
            await page.screenshot({ path, fullPage: true }).catch(() => {});
            console.error(`screenshot of ${page.url()}: ${path}`);
          }
        }
      }
      throw error;
    } finally {
      for (const context of mine) await context.close().catch(() => {});
    }
  });
}

/**
 * Asserts that the page does not scroll sideways (a table too wide scrolls in its own box) and
 * that no table cell breaks a word across lines ("admi|n", "Delet|e"): each visible text of one
 * word without a hyphen, of at most 24 characters (a role, a state, an action kind, the Delete
 * link), renders on one line. Longer or hyphenated ids may wrap.
 */
async function assertLayout(page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${page.url()} scrolls sideways by ${overflow} px`);
  const split = await page.evaluate(() => {
    const broken = [];
    for (const cell of document.querySelectorAll("th, td")) {
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = node.textContent.trim();
        if (!/^[^\s-]{1,24}$/.test(text) || node.parentElement.closest(".visually-hidden")) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const lines = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
        if (lines.size > 1) broken.push(text);
      }
    }
    return broken;
  });
  assert.deepEqual(split, [], `words broken across lines on ${page.url()}`);
}

/** The console's session cookie in `page`'s browser profile, if any. */
async function sessionCookie(page) {
  return (await page.context().cookies()).find((cookie) => cookie.name === "tessera_console");
}

/** Signs `page` in with an API key and waits for the home page. */
async function signInWithKey(page, apikey) {
  await page.goto(`${BASE}/console/`);
  await page.waitForURL(`${BASE}/console/sign-in`);
  await page.getByLabel("API key", { exact: true }).fill(apikey);
  await page.getByRole("button", { name: "Sign in with the API key" }).click();
  await page.waitForURL(`${BASE}/console/`);
}

/** Follows the navigation link `name` of the page's header. */
async function navigate(page, name) {
  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name, exact: true }).waitFor();
}

// ---- the tests ------------------------------------------------------------------------------

browserTest("sign-in with an API key: a wrong key is refused, the right one opens the home page", async (open) => {
  const page = await open();
  const response = await page.goto(`${BASE}/`);
  assert.equal(page.url(), `${BASE}/console/sign-in`, "/ leads to the console, which asks to sign in");
  assert.equal(response.status(), 200);
  const csp = response.headers()["content-security-policy"];
  assert.match(csp, /default-src 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  // Keyboard: the first Tab reaches the skip link.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await screenshot(page, "sign-in");

  await page.getByLabel("API key", { exact: true }).fill("no-such-key-0123456789abcdefghij");
  await page.getByRole("button", { name: "Sign in with the API key" }).click();
  await page.getByRole("alert").filter({ hasText: "the API key is not valid" }).waitFor();
  assert.equal(await sessionCookie(page), undefined, "no session for a wrong key");

  await page.getByLabel("API key", { exact: true }).fill(ADMIN_KEY);
  await page.getByRole("button", { name: "Sign in with the API key" }).click();
  await page.waitForURL(`${BASE}/console/`);
  const facts = await page.locator("dl.facts").innerText();
  assert.match(facts, /Global administrator\s+yes/);
  const cookie = await sessionCookie(page);
  assert.ok(cookie, "a session cookie");
  assert.equal(cookie.httpOnly, true, "scripts cannot read the session");
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(await page.evaluate(() => document.cookie), "", "not visible to the page");
  await screenshot(page, "home");

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${BASE}/console/sign-in`);
  await page.goto(`${BASE}/console/`);
  assert.equal(page.url(), `${BASE}/console/sign-in`, "signed out");
});

browserTest("sign-in with a password and a TOTP code (the account requires TOTP)", async (open) => {
  const account = (await api("POST", "/v1/accounts", { name: "browser-mfa" })).id;
  await api("PATCH", `/v1/accounts/${account}`, { mfa: "TOTP" });
  const password = "correct-horse-battery-0";
  const user = await api("POST", "/v1/users", {
    name: "Tess Otp",
    email: "tess@example.com",
    password,
    account_id: account,
  });
  const factor = await api("POST", `/v1/users/${user.id}/totp`, {});
  const now = Math.floor(Date.now() / 1000 / 30);
  // A code is accepted once: confirm with the previous step's (one step of skew is accepted),
  // sign in with the current one.
  await api("POST", `/v1/users/${user.id}/totp/confirm`, { code: totp(factor.secret, now - 1) });

  const page = await open();
  await page.goto(`${BASE}/console/sign-in`);
  await page.getByLabel("E-mail or user id").fill("tess@example.com");
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in with the password" }).click();
  const missing = page.getByRole("alert");
  await missing.waitFor();
  assert.equal(page.url(), `${BASE}/console/sign-in`, "no session without the code");
  assert.equal(await sessionCookie(page), undefined);

  await page.getByLabel("E-mail or user id").fill("tess@example.com");
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("One-time code").fill(totp(factor.secret, Math.floor(Date.now() / 1000 / 30)));
  await page.getByRole("button", { name: "Sign in with the password" }).click();
  await page.waitForURL(`${BASE}/console/`);
  const facts = await page.locator("dl.facts").innerText();
  assert.match(facts, /Tess Otp/);
  assert.ok(facts.includes(user.id), facts);
  assert.match(facts, /Global administrator\s+no/);
});

browserTest("the CSP blocks an inline script, the browser reaches nothing but the server, and the watchers see both", async (open) => {
  // The control of the checks of every other test: were the policy, the network fence or the
  // watchers broken, this would fail.
  const page = await open();
  await page.goto(`${BASE}/console/sign-in`);
  const seen = problems.length;
  await page.addScriptTag({ content: "window.inlineRan = true;" }).catch(() => {});
  // Both watchers: the page's securitypolicyviolation event and chromium's console error.
  const event = (p) => p.startsWith("CSP violation") && p.includes("script-src");
  const logged = (p) => p.startsWith("console error") && p.includes("Content Security Policy");
  const both = () => problems.slice(seen).some(event) && problems.slice(seen).some(logged);
  for (let i = 0; i < 50 && !both(); i += 1) await page.waitForTimeout(100);
  const reported = problems.splice(seen);
  assert.ok(reported.some(event) && reported.some(logged), `${reported}`);
  assert.equal(await page.evaluate(() => window.inlineRan), undefined, "the inline script did not run");

  // A navigation (which no CSP governs) to another host: refused by the route, reported.
  const before = problems.length;
  await assert.rejects(page.goto("http://tessera-browser-test.invalid/"));
  const outside = problems.splice(before);
  assert.deepEqual(outside, ["a request beyond the server: http://tessera-browser-test.invalid/"]);
});

let created; // the service account the console created: { id, iamId, apikey }

browserTest("a service account and an API key created in the console; the key works at /identity/token", async (open) => {
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await navigate(page, "Service accounts");
  await page.getByLabel(/^Name\b/).fill("browser-robot");
  await page.getByLabel("Description").fill("made in chromium");
  await page.getByLabel("Account id").last().fill(team);
  await page.getByRole("button", { name: "Create service account" }).click();
  await page.getByRole("heading", { level: 1, name: "service account created" }).waitFor();
  const id = await page.locator("main p[role=status] strong").innerText();
  assert.match(id, /^ServiceId-/);
  const iamId = `iam-${id}`;

  await navigate(page, "API keys");
  await page.getByLabel("Owner").fill(iamId);
  await page.getByLabel(/^Name\b/).fill("browser-key");
  await page.getByRole("button", { name: "Create API key" }).click();
  await page.getByRole("heading", { level: 1, name: "API key created" }).waitFor();
  const secret = page.locator("#secret");
  const apikey = await secret.inputValue();
  assert.ok(apikey.length >= 32, apikey);
  assert.match(await page.locator(".secret").innerText(), /shown once/);
  const copy = page.getByRole("button", { name: "Copy" });
  await copy.click();
  await page.getByRole("button", { name: "Copied" }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), apikey, "copied");
  await screenshot(page, "api-key-created");

  const { status, body } = await tokenOf(apikey);
  assert.equal(status, 200, JSON.stringify(body));
  assert.ok(body.access_token);
  const me = await api("GET", "/v1/whoami", undefined, body.access_token);
  assert.equal(me.iam_id, iamId, "the key is the new service account's");

  // Shown once: neither the list nor the back button brings it back.
  await page.getByRole("link", { name: "Back to API keys" }).click();
  await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
  assert.ok(!(await page.content()).includes(apikey), "not in the list");
  await page.goBack();
  assert.ok(!(await page.content()).includes(apikey), "not from the back button's cache");

  created = { id, iamId, apikey };
  await page.goto(`${BASE}/console/r/service_accounts?account_id=${team}`);
  await page.getByRole("cell", { name: id, exact: true }).waitFor();
  await screenshot(page, "service-accounts");
});

browserTest("a role granted in the console takes effect", async (open) => {
  assert.ok(created, "needs the service account of the test before");
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await navigate(page, "Access bindings");
  const role = page.getByLabel("Role");
  const meanings = await role.locator("option").allInnerTexts();
  assert.ok(meanings.some((text) => text.startsWith("viewer — ")), `roles with meanings: ${meanings}`);
  await page.getByLabel("Subject").fill(created.iamId);
  await role.selectOption("viewer");
  await page.getByLabel(/^Resource\b/).fill(`account/${team}`);
  await page.getByRole("button", { name: "Create access binding" }).click();
  await page.getByRole("heading", { level: 1, name: "access binding created" }).waitFor();

  const token = (await tokenOf(created.apikey)).body.access_token;
  const listed = await api("GET", `/v1/service_accounts?account_id=${team}`, undefined, token);
  assert.ok(listed.service_accounts.some((sa) => sa.id === created.id), "the viewer reads its account");

  await page.goto(`${BASE}/console/r/access_bindings?q=${encodeURIComponent(created.iamId)}`);
  const row = page.getByRole("row").filter({ hasText: created.iamId });
  await row.waitFor();
  assert.match(await row.innerText(), /viewer/);
  await page.goto(`${BASE}/console/r/access_bindings`);
  await screenshot(page, "access-bindings");
});

browserTest("a delete asks first, naming the object and what goes with it", async (open) => {
  assert.ok(created, "needs the service account of the tests before");
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await navigate(page, "Service accounts");
  await page.getByLabel("Search by name or id").fill("browser-robot");
  await page.getByRole("button", { name: "Search" }).click();
  const row = page.getByRole("row").filter({ hasText: created.id });
  await row.getByRole("link", { name: /Delete/ }).click();
  await page.getByRole("heading", { level: 1, name: "Delete service account" }).waitFor();
  const warning = await page.getByRole("alert").innerText();
  assert.ok(warning.includes("browser-robot") && warning.includes(created.id), warning);
  const cascade = await page.locator("main").innerText();
  assert.match(cascade, /It takes with it: Its API keys, authorized keys, access bindings/);
  await screenshot(page, "delete-confirmation");

  // Cancel deletes nothing.
  await page.getByRole("link", { name: "Cancel" }).click();
  await page.getByRole("heading", { level: 1, name: "Service accounts" }).waitFor();
  assert.equal((await tokenOf(created.apikey)).status, 200, "still there");

  await page.goto(`${BASE}/console/r/service_accounts/${created.id}/delete`);
  await page.getByRole("button", { name: `Delete service account ${created.id}` }).click();
  await page.getByRole("heading", { level: 1, name: "Service accounts" }).waitFor();
  assert.equal(await page.getByRole("cell", { name: created.id, exact: true }).count(), 0);
  const { status } = await tokenOf(created.apikey);
  assert.notEqual(status, 200, "its API key went with it");
});

browserTest("rotate a signing key", async (open) => {
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await navigate(page, "Signing keys");
  const rows = page.locator("tbody tr");
  const before = await rows.count();
  assert.ok(before >= 1);
  await page.getByLabel("Keys").selectOption("jwt");
  await page.getByRole("button", { name: "Rotate now" }).click();
  await page.getByRole("heading", { level: 1, name: "Signing keys" }).waitFor();
  assert.equal(await rows.count(), before + 1, "a successor key");
  const states = await rows.locator('td[data-label="State"]').allInnerTexts();
  assert.ok(states.includes("next"), `the successor is published first: ${states}`);
  await screenshot(page, "signing-keys");
});

browserTest("filter the audit log", async (open) => {
  const probe = await api("POST", "/v1/service_accounts", { name: "audit-probe", account_id: team });
  await api("DELETE", `/v1/service_accounts/${probe.id}`);
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await navigate(page, "Audit log");
  await page.getByLabel("Kind").fill("service_account.delete");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/action=service_account.delete/);
  const kinds = await page.locator('td[data-label="Kind"]').allInnerTexts();
  assert.ok(kinds.every((kind) => kind === "service_account.delete"), `filtered: ${kinds}`);
  assert.ok((await page.locator("tbody").innerText()).includes(probe.id), "the probe's delete");
  // A filter of all kinds of a resource, and a bad one answered with the admin API's message.
  await page.getByLabel("Kind").fill("service_account.");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/action=service_account\./);
  const all = await page.locator('td[data-label="Kind"]').allInnerTexts();
  assert.ok(all.includes("service_account.create") && all.includes("service_account.delete"), `${all}`);
  await screenshot(page, "audit-log");
  const response = await page.goto(`${BASE}/console/audit?since=yesterday`);
  assert.equal(response.status(), 400);
  await page.getByRole("alert").waitFor();
});

browserTest("a trusted profile made with the claim-rule editor; the admin API's message beside the form", async (open) => {
  const sa = await api("POST", "/v1/service_accounts", { name: "profile-member", account_id: team });
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await navigate(page, "Trusted profiles");
  await page.locator("#f-name").fill("browser-profile");
  await page.locator("#f-account_id").fill(team);
  await page.getByLabel("Identity 1 (identities[0]): type").selectOption("serviceid");
  await page.getByLabel(/^Identity 1: identifier/).fill(sa.iam_id);
  await page.getByLabel("Rule 1: compute-resource type").selectOption("CE");
  await page.getByLabel("Rule 1, condition 1 (conditions[0]): claim").fill("namespace");
  await page.getByLabel("Rule 1, condition 1: operator").selectOption("EQUALS");
  const value = page.getByLabel(/^Rule 1, condition 1: value/);
  await value.fill("prod");
  await page.getByRole("button", { name: "Create trusted profile" }).click();
  // Not JSON: the admin API's 400, next to the form, everything entered kept.
  await page.getByRole("alert").filter({ hasText: "rules[0].conditions[0]" }).waitFor();
  assert.equal(await value.inputValue(), "prod");
  assert.equal(await page.locator("#f-name").inputValue(), "browser-profile");
  await assertLayout(page);
  // More rows: the same form with spare rows, nothing sent.
  await page.getByRole("button", { name: "More rows" }).click();
  await page.getByLabel("Rule 4: name (optional)").waitFor();
  assert.equal(await value.inputValue(), "prod");
  await value.fill('"prod"');
  await page.getByRole("button", { name: "Create trusted profile" }).click();
  await page.getByRole("status").filter({ hasText: "Created trusted profile" }).waitFor();
  const made = (await api("GET", `/v1/trusted_profiles?account_id=${team}`)).trusted_profiles.find(
    (profile) => profile.name === "browser-profile",
  );
  assert.deepEqual(made.rules[0].conditions[0], { claim: "namespace", operator: "EQUALS", value: '"prod"' });
  assert.equal(made.identities[0].identifier, sa.iam_id);
  // Its page: every field, its bindings linked.
  await page.goto(`${BASE}/console/r/trusted_profiles/${made.id}`);
  await page.getByRole("heading", { level: 1, name: `Trusted profile ${made.id}` }).waitFor();
  await page.getByRole("link", { name: "Its access bindings" }).waitFor();
  await assertLayout(page);
});

browserTest("a user's TOTP factor enrolled and confirmed on its page; the account's requirement set", async (open) => {
  const account = (await api("POST", "/v1/accounts", { name: "browser-mfa" })).id;
  const user = await api("POST", "/v1/users", {
    name: "Mia",
    email: "mia@example.com",
    password: "mia-password-0123",
    account_id: account,
  });
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await page.goto(`${BASE}/console/r/users?account_id=${account}`);
  assert.equal(await page.locator('td[data-label="TOTP"]').innerText(), "none");
  await page.getByRole("link", { name: `Details ${user.id}` }).click();
  await page.getByRole("heading", { level: 1, name: `User ${user.id}` }).waitFor();
  await page.getByRole("button", { name: "Enrol a TOTP factor" }).click();
  // The secret, shown once; the code of an authenticator app confirms it.
  const secret = await page.getByRole("textbox", { name: "TOTP secret" }).inputValue();
  await page.getByLabel("Current code of the authenticator app").fill(totp(secret, Math.floor(Date.now() / 1000 / 30)));
  await page.getByRole("button", { name: "Confirm the factor" }).click();
  await page.getByRole("heading", { level: 1, name: `User ${user.id}` }).waitFor();
  assert.match(await page.locator("#totp ~ p").first().innerText(), /State: confirmed/);
  assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
  await assertLayout(page);
  // The account's requirement.
  await page.getByRole("link", { name: "Its account" }).click();
  await page.getByLabel("Require", { exact: true }).selectOption("TOTP");
  await page.getByRole("button", { name: "Save the requirement" }).click();
  await page.getByText("a password and a TOTP code").waitFor();
  assert.equal((await api("GET", `/v1/accounts/${account}`)).mfa, "TOTP");
  await assertLayout(page);
});

browserTest("inspect a token", async (open) => {
  const page = await open();
  await signInWithKey(page, ADMIN_KEY);
  await navigate(page, "Token inspector");
  const token = (await tokenOf(ADMIN_KEY)).body.access_token;
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Inspect" }).click();
  await page.getByRole("heading", { name: "Result" }).waitFor();
  assert.equal(page.url(), `${BASE}/console/inspect`, "the token is not in the URL");
  await page.getByRole("status").filter({ hasText: "Signature valid, token active." }).waitFor();
  const result = await page.locator("main section").last().innerText();
  assert.match(result, /Header \(unverified\)/);
  assert.match(result, /"alg"/);
  assert.match(result, /Claims \(unverified\)/);
  assert.match(result, /Expires/);
  assert.ok(!result.includes(token), "the token itself is not echoed");
  await screenshot(page, "token-inspector");

  await page.getByLabel("Token").fill(`${token.slice(0, -4)}AAAA`);
  await page.getByRole("button", { name: "Inspect" }).click();
  await page.getByRole("alert").filter({ hasText: "Not active" }).waitFor();
});

browserTest("a viewer sees no write controls", async (open) => {
  const { apikey } = await member(team, "viewer", "browser-viewer");
  const target = await api("POST", "/v1/service_accounts", { name: "viewer-target", account_id: team });
  const page = await open();
  await signInWithKey(page, apikey);
  await page.goto(`${BASE}/console/r/service_accounts?account_id=${team}`);
  await page.getByRole("cell", { name: target.id, exact: true }).waitFor();
  assert.equal(await page.getByRole("link", { name: /Delete/ }).count(), 0, "no delete links");
  assert.equal(await page.getByRole("button", { name: /Create/ }).count(), 0, "no create form");
  assert.equal(await page.locator("main form[method=post]").count(), 0, "no form posts (but Sign out)");
  await page.goto(`${BASE}/console/r/access_bindings?account_id=${team}`);
  assert.equal(await page.getByRole("button", { name: /Create/ }).count(), 0);
  const keys = await page.goto(`${BASE}/console/signing-keys`);
  assert.equal(keys.status(), 403, "signing keys are the global administrator's");
  assert.equal(await page.getByRole("button", { name: "Rotate now" }).count(), 0);
});

browserTest("another account's object answers 403", async (open) => {
  const other = (await api("POST", "/v1/accounts", { name: "browser-other" })).id;
  const theirs = await api("POST", "/v1/service_accounts", { name: "not-yours", account_id: other });
  const { apikey } = await member(team, "admin", "browser-team-admin");
  const page = await open();
  await signInWithKey(page, apikey);
  const confirm = await page.goto(`${BASE}/console/r/service_accounts/${theirs.id}/delete`);
  assert.equal(confirm.status(), 403);
  await page.getByRole("heading", { level: 1, name: "Not allowed" }).waitFor();
  assert.equal(await page.getByRole("button", { name: /Delete/ }).count(), 0);
  const listed = await page.goto(`${BASE}/console/r/service_accounts?account_id=${other}`);
  assert.equal(listed.status(), 403);
  assert.ok(!(await page.content()).includes("not-yours"));
  // Its own account it manages.
  await page.goto(`${BASE}/console/r/service_accounts?account_id=${team}`);
  await page.getByRole("button", { name: "Create service account" }).waitFor();
});

browserTest("a phone-sized screen shows each row as a card", async (open) => {
  await api("POST", "/v1/service_accounts", { name: "phone-card", account_id: team });
  const page = await open(true);
  await signInWithKey(page, ADMIN_KEY);
  await page.goto(`${BASE}/console/r/service_accounts?account_id=${team}`);
  const cell = page.locator('tbody td[data-label="Name"]').first();
  await cell.waitFor();
  const layout = await page.evaluate(() => ({
    theadShown: getComputedStyle(document.querySelector("thead")).display !== "none",
    rowDisplay: getComputedStyle(document.querySelector("tbody tr")).display,
    label: getComputedStyle(document.querySelector("tbody td[data-label]"), "::before").content,
  }));
  assert.equal(layout.theadShown, false, "no table header on a phone");
  assert.equal(layout.rowDisplay, "block", "each row a card");
  assert.match(layout.label, /Id: /, "each cell labelled");
  await screenshot(page, "phone");
});
