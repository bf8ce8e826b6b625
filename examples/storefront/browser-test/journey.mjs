// The storefront's journey in a real browser: headless Chromium (Debian's, driven by
// playwright-core) opens the page served from a trusted origin and, against a running api with
// its workers, logs in, places an order and sees its status change on screen when an ADMIN
// ships it; then a page served from an origin not in TRUSTED_ORIGINS is refused.
//
// Run by api/tests/api/storefront.rs, which starts everything and sets:
//   API_URL, SHOP_URL (trusted), FOREIGN_URL (not trusted), PRODUCT_NAME,
//   CUSTOMER_EMAIL, CUSTOMER_PASSWORD, ADMIN_EMAIL, ADMIN_PASSWORD, and optionally CHROMIUM.
// Exits 0 when every step passed; otherwise prints what went wrong and exits 1.

import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const API = env("API_URL");
const STEP_TIMEOUT = 20_000;

function step(what) {
  console.log(`- ${what}`);
}

/** Logs in as the ADMIN outside the browser and moves the order along, as staff would. */
async function ship(orderId) {
  const login = await fetch(`${API}/api/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: env("ADMIN_EMAIL"), password: env("ADMIN_PASSWORD") }),
  });
  if (!login.ok) throw new Error(`admin login: ${login.status}`);
  const cookie = login.headers.getSetCookie().find((c) => c.startsWith("access_token="));
  const token = cookie.split(";")[0].slice("access_token=".length);
  for (const status of ["PAID", "SHIPPED"]) {
    const res = await fetch(`${API}/api/v1/orders/${orderId}/status`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, Prefer: "wait=10" },
      body: JSON.stringify({ status }),
    });
    if (res.status !== 200) throw new Error(`moving to ${status}: ${res.status} ${await res.text()}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
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
let page;
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT);
  page = await context.newPage();
  page.on("console", (msg) => console.log(`  [page] ${msg.text()}`));

  step("the storefront on a trusted origin lists the products");
  await page.goto(`${env("SHOP_URL")}/?api=${encodeURIComponent(API)}`);
  const product = page.locator("#products li", { hasText: env("PRODUCT_NAME") });
  await product.waitFor();

  step("the customer logs in");
  await page.fill("#email", env("CUSTOMER_EMAIL"));
  await page.fill("#password", env("CUSTOMER_PASSWORD"));
  await page.click("#login");
  await page.locator("#session", { hasText: env("CUSTOMER_EMAIL") }).waitFor();

  step("the customer orders; Prefer: wait answers with the order confirmed");
  await product.locator("button").click();
  await page.locator("#order-status", { hasText: "CONFIRMED" }).waitFor();
  await page.locator("#live", { hasText: "(live)" }).waitFor();
  const orderId = (await page.textContent("#order-id")).trim();

  step(`an ADMIN ships order ${orderId}; the page shows it live`);
  await ship(orderId);
  await page.locator("#order-status", { hasText: "SHIPPED" }).waitFor();
  const timeline = await page.textContent("#timeline");
  for (const status of ["CONFIRMED", "PAID", "SHIPPED"]) {
    if (!timeline.includes(status)) throw new Error(`timeline lacks ${status}: ${timeline}`);
  }

  step("the same page on an origin not in TRUSTED_ORIGINS is refused");
  const foreign = await context.newPage();
  foreign.on("console", (msg) => console.log(`  [foreign page] ${msg.text()}`));
  await foreign.goto(`${env("FOREIGN_URL")}/?api=${encodeURIComponent(API)}`);
  await foreign.locator("#error", { hasText: "cannot reach the api" }).waitFor();
  const listed = await foreign.locator("#products li").count();
  if (listed !== 0) throw new Error(`the foreign page listed ${listed} products`);

  console.log("journey passed");
} catch (e) {
  console.error(`journey failed: ${e.stack || e}`);
  if (page) console.error(`page body:\n${await page.textContent("body").catch(() => "?")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
