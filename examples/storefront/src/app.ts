// The storefront's behaviour: lists products, logs in, places an order with `Prefer: wait` and
// an `Idempotency-Key`, and follows it live over Server-Sent Events. Every call goes through
// `openapi-fetch` typed by `api.d.ts`, which `openapi-typescript` generates from the api's own
// OpenAPI document: a change of the HTTP contract that breaks this page fails `tsc`.

import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Schemas = components["schemas"];
type Order = Schemas["Order"];
type OrderStatus = Schemas["OrderStatus"];
type Product = Schemas["Product"];
type User = Schemas["User"];
type Problem = Schemas["Problem"];
/** A timeline entry of an order, or a change heard on its event stream. */
type Entry =
  | Schemas["TimelineItem"]
  | Schemas["StatusEntry"]
  | Schemas["RefundEntry"]
  | Schemas["FulfilmentEntry"]
  | Schemas["ReturnEntry"];

const params = new URLSearchParams(location.search);
const API = (params.get("api") || "http://localhost:8080").replace(/\/+$/, "");
const FINAL: readonly OrderStatus[] = ["REJECTED", "CANCELLED", "DELIVERED"];
/** The event stream of one order: a path of the contract, so a renamed route fails `tsc`. */
const ORDER_EVENTS: keyof paths = "/api/v1/orders/{id}/events";

// Every call sends the auth cookies (credentials: "include"); the api answers this origin only
// if it is in TRUSTED_ORIGINS.
const client = createClient<paths>({ baseUrl: API, credentials: "include" });

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page lacks #${id}`);
  return found as T;
}

function showError(message: string): void {
  element("error").textContent = message;
}

/** A refused call: the problem's `detail` and the HTTP status. */
class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * Sends a call and gives its data, or throws an ApiError. An expired access token is renewed
 * once with the refresh cookie (`refresh: false` for the auth routes themselves).
 */
async function call<T>(send: () => Promise<Answer<T>>, refresh = true): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await send();
  } catch {
    throw new Error(
      `cannot reach the api at ${API}: this page's origin (${location.origin}) ` +
        "may not be in its TRUSTED_ORIGINS",
    );
  }
  const { data, error, response } = answer;
  if (response.status === 401 && refresh) {
    const refreshed = await client.POST("/api/v1/auth/refresh");
    if (refreshed.response.ok) return call(send, false);
  }
  if (!response.ok || error !== undefined) {
    const detail = (error as Partial<Problem> | undefined)?.detail;
    throw new ApiError(detail || `${response.status} ${response.statusText}`, response.status);
  }
  return data as T;
}

function money(minor: number, currency: string): string {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minor / 100);
}

let user: User | null = null;

function setUser(u: User | null): void {
  user = u;
  element("session").textContent = u ? `Logged in as ${u.email}.` : "Not logged in.";
  document.querySelectorAll<HTMLButtonElement>("#products button").forEach((b) => {
    b.disabled = !u;
  });
}

async function loadProducts(): Promise<void> {
  const page = await call(() => client.GET("/api/v1/products", { params: { query: { limit: 50 } } }));
  const list = element("products");
  list.replaceChildren(...page.items.map(productItem));
}

function productItem(p: Product): HTMLLIElement {
  const li = document.createElement("li");
  li.dataset.productId = p.id;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = `${p.name} - ${money(p.price, p.currency)} (${p.stock} in stock)`;
  const quantity = document.createElement("input");
  quantity.type = "number";
  quantity.min = "1";
  quantity.value = "1";
  const button = document.createElement("button");
  button.textContent = "Order";
  button.disabled = !user;
  button.addEventListener("click", () => {
    placeOrder(p.id, Number(quantity.value)).catch((e: Error) => showError(e.message));
  });
  li.append(name, quantity, button);
  return li;
}

element("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  try {
    const body = {
      email: element<HTMLInputElement>("email").value,
      password: element<HTMLInputElement>("password").value,
    };
    setUser(await call(() => client.POST("/api/v1/auth/login", { body }), false));
  } catch (e) {
    showError((e as Error).message);
  }
});

async function placeOrder(productId: string, quantity: number): Promise<void> {
  showError("");
  // Prefer: wait answers once the order is CONFIRMED or REJECTED (201), or accepted (202).
  // The Idempotency-Key makes a retried click the same order.
  const order = await call(() =>
    client.POST("/api/v1/orders", {
      params: { header: { Prefer: "wait=5", "Idempotency-Key": crypto.randomUUID() } },
      body: { items: [{ product_id: productId, quantity }] },
    }),
  );
  showOrder(order);
  follow(order.id);
}

function showOrder(order: Order): void {
  element("order-id").textContent = order.id;
  element("order-status").textContent = order.status;
  element("timeline").replaceChildren();
  for (const entry of order.timeline) addEntry(entry);
}

function addEntry(entry: Entry): void {
  const li = document.createElement("li");
  const at = new Date(entry.at).toLocaleTimeString();
  const what = "to" in entry
    ? entry.to
    : "refund_status" in entry
      ? `refund ${entry.refund_status} (${money(entry.amount, entry.currency)})`
      : "fulfilment_id" in entry || ("kind" in entry && entry.kind === "fulfilment")
        ? `shipment ${entry.status}`
        : `return ${entry.status}`;
  const reason = "reason" in entry ? entry.reason : null;
  li.textContent = `${what} at ${at}` + (reason ? ` (${reason})` : "");
  element("timeline").append(li);
}

let source: EventSource | null = null;

// Live updates: the stream opens with the order, then one event per change. The browser
// reconnects by itself with Last-Event-ID and the api replays what was missed.
function follow(orderId: string): void {
  source?.close();
  const stream = new EventSource(API + ORDER_EVENTS.replace("{id}", orderId), {
    withCredentials: true,
  });
  source = stream;
  stream.addEventListener("open", () => {
    element("live").textContent = "(live)";
  });
  stream.addEventListener("order", (event) => showOrder(JSON.parse(event.data) as Order));
  stream.addEventListener("status_changed", (event) => {
    const change = JSON.parse(event.data) as Schemas["StatusEntry"];
    element("order-status").textContent = change.to;
    addEntry(change);
    if (FINAL.includes(change.to)) {
      stream.close();
      element("live").textContent = "(final)";
    }
  });
  stream.addEventListener("refund_changed", (event) => {
    addEntry(JSON.parse(event.data) as Schemas["RefundEntry"]);
  });
  stream.addEventListener("fulfilment_changed", (event) => {
    addEntry(JSON.parse(event.data) as Schemas["FulfilmentEntry"]);
  });
  stream.addEventListener("return_changed", (event) => {
    addEntry(JSON.parse(event.data) as Schemas["ReturnEntry"]);
  });
  stream.addEventListener("error", () => {
    element("live").textContent = stream.readyState === EventSource.CLOSED ? "" : "(reconnecting)";
  });
}

(async () => {
  try {
    await loadProducts();
    const me = await call(() => client.GET("/api/v1/users/me")).catch((e: unknown) => {
      if (e instanceof ApiError && e.status === 401) return null;
      throw e;
    });
    setUser(me);
  } catch (e) {
    showError((e as Error).message);
  }
})();
