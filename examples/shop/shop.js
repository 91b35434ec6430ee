// The demo shop's page logic. Every tracking call goes through the global `eventline(...)` that
// the loader snippet in each page defines: calls made before /eventline/eventline.js has loaded
// are queued with their time and replayed by it, so nothing is lost on a slow network.
import { ACCOUNTS, CURRENCY, PRODUCTS, money, product } from "./catalog.js";

const CART_KEY = "shop.cart";
const CUSTOMER_KEY = "shop.customer";

/**
 * Tracks one event and announces it as a `shop:tracked` DOM event (name, context, time and, once
 * the tracker has loaded, the event id), which browser dev tools and the end-to-end tests watch.
 */
function track(name, context) {
  const at = Date.now();
  const eventId = window.eventline("track", name, context);
  // The tracker stamps the event's time inside the call: between `at` and `after`.
  const after = Date.now();
  window.dispatchEvent(new CustomEvent("shop:tracked", {
    detail: { name, context, at, after, eventId: typeof eventId === "string" ? eventId : null },
  }));
}

// ---- state kept in the browser (a real shop would keep the cart on its server) ----

function cart() {
  try {
    return JSON.parse(localStorage.getItem(CART_KEY)) || [];
  } catch {
    return [];
  }
}

function saveCart(lines) {
  localStorage.setItem(CART_KEY, JSON.stringify(lines));
}

function cartLines() {
  return cart()
    .map((line) => ({ ...line, product: product(line.id) }))
    .filter((line) => line.product);
}

function cartTotal(lines) {
  return Math.round(lines.reduce((sum, l) => sum + l.product.price * l.qty, 0) * 100) / 100;
}

function customer() {
  try {
    return JSON.parse(localStorage.getItem(CUSTOMER_KEY));
  } catch {
    return null;
  }
}

// ---- rendering helpers ----

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function header() {
  const who = customer();
  const count = cart().reduce((n, l) => n + l.qty, 0);
  const account = who
    ? el("span", {}, `Hi, ${who.name} · `,
      el("a", { href: "#", id: "logout", onclick: logout }, "Log out"))
    : el("a", { href: `login.html?next=${encodeURIComponent(location.pathname + location.search)}`, id: "login-link" }, "Log in");
  document.querySelector("header").replaceChildren(
    el("a", { href: "index.html", class: "brand" }, "Northwind Outdoor"),
    el("nav", {},
      el("a", { href: "index.html" }, "Products"),
      el("a", { href: "cart.html", id: "cart-link" }, `Cart (${count})`),
      account),
  );
}

function logout(e) {
  e.preventDefault();
  localStorage.removeItem(CUSTOMER_KEY);
  track("logged_out", {});
  // A new anonymous id and session: the next person on this browser is somebody else.
  window.eventline("reset");
  location.href = "index.html";
}

// ---- pages ----

function listPage() {
  const grid = document.getElementById("products");
  grid.replaceChildren(...PRODUCTS.map((p) =>
    el("a", { class: "card", href: `product.html?id=${p.id}`, "data-product": p.id },
      el("div", { class: `swatch ${p.category.toLowerCase()}` }, p.category),
      el("h3", {}, p.name),
      el("p", { class: "price" }, money(p.price)))));
}

function productPage() {
  const p = product(new URLSearchParams(location.search).get("id"));
  const main = document.querySelector("main");
  if (!p) {
    main.replaceChildren(el("h1", {}, "Product not found"), el("a", { href: "index.html" }, "All products"));
    return;
  }
  document.title = `${p.name} · Northwind Outdoor`;
  track("product_viewed", {
    product_id: p.id, product_name: p.name, category: p.category, price: p.price,
    currency: CURRENCY, in_stock: true,
  });
  const qty = el("input", { type: "number", id: "qty", min: "1", max: "9", value: "1" });
  const status = el("p", { id: "added", class: "status" });
  main.replaceChildren(
    el("p", {}, el("a", { href: "index.html" }, "← All products")),
    el("div", { class: "product" },
      el("div", { class: `swatch big ${p.category.toLowerCase()}` }, p.category),
      el("div", {},
        el("h1", {}, p.name),
        el("p", { class: "price" }, money(p.price)),
        el("p", {}, p.text),
        el("p", {}, `Colour: ${p.colour}`),
        el("label", {}, "Quantity ", qty),
        el("button", {
          id: "add-to-cart",
          onclick: () => {
            const n = Math.max(1, Math.min(9, Number(qty.value) || 1));
            const lines = cart();
            const line = lines.find((l) => l.id === p.id);
            if (line) line.qty += n;
            else lines.push({ id: p.id, qty: n });
            saveCart(lines);
            track("added_to_cart", {
              product_id: p.id, product_name: p.name, category: p.category, price: p.price, quantity: n,
              cart_items: lines.reduce((sum, l) => sum + l.qty, 0),
            });
            header();
            status.replaceChildren("Added to your cart · ", el("a", { href: "cart.html" }, "View cart"));
          },
        }, "Add to cart"),
        status)),
  );
}

function cartPage() {
  const lines = cartLines();
  const main = document.querySelector("main");
  if (!lines.length) {
    main.replaceChildren(el("h1", {}, "Your cart is empty"), el("a", { href: "index.html" }, "Continue shopping"));
    return;
  }
  main.replaceChildren(
    el("h1", {}, "Your cart"),
    el("table", {},
      ...lines.map((l) => el("tr", {},
        el("td", {}, el("a", { href: `product.html?id=${l.id}` }, l.product.name)),
        el("td", {}, `× ${l.qty}`),
        el("td", { class: "num" }, money(l.product.price * l.qty)))),
      el("tr", { class: "total" }, el("td", {}, "Total"), el("td"), el("td", { class: "num", id: "total" }, money(cartTotal(lines))))),
    el("a", { class: "button", href: "checkout.html", id: "checkout" }, "Checkout"),
  );
}

function loginPage() {
  const form = document.getElementById("login-form");
  const next = new URLSearchParams(location.search).get("next") || "index.html";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const email = form.email.value.trim().toLowerCase();
    const known = ACCOUNTS.find((a) => a.email === email);
    // A new customer gets a number from the shop's back end; the demo derives one from the e-mail.
    const who = known || {
      email, name: email.split("@")[0],
      customerId: String(2000 + [...email].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 7919, 0)),
    };
    localStorage.setItem(CUSTOMER_KEY, JSON.stringify(who));
    // From now on every event of this browser carries the shop's own customer id.
    window.eventline("identify", who.customerId);
    track("logged_in", { method: "password" });
    location.href = next.startsWith("/") && !next.startsWith("//") ? next : "index.html";
  });
  const hint = document.getElementById("accounts");
  hint.replaceChildren(...ACCOUNTS.map((a) => el("li", {}, `${a.email} (customer ${a.customerId})`)));
}

function checkoutPage() {
  const lines = cartLines();
  const main = document.querySelector("main");
  if (!lines.length) {
    main.replaceChildren(el("h1", {}, "Nothing to check out"), el("a", { href: "index.html" }, "Continue shopping"));
    return;
  }
  const who = customer();
  const total = cartTotal(lines);
  track("checkout_started", { total, items: lines.reduce((n, l) => n + l.qty, 0), currency: CURRENCY });
  const form = el("form", { id: "checkout-form" },
    el("label", {}, "Name ", el("input", { name: "name", required: "", value: who ? who.name : "" })),
    el("label", {}, "E-mail ", el("input", { name: "email", type: "email", required: "", value: who ? who.email : "" })),
    el("label", {}, "Address ", el("input", { name: "address", required: "", value: "Main Street 1, Dublin" })),
    el("p", {}, "Total ", el("strong", {}, money(total))),
    el("button", { id: "place-order", type: "submit" }, "Place order"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const orderId = `ORD-${Date.now().toString(36).toUpperCase()}`;
    track("purchase", {
      order_id: orderId,
      total,
      currency: CURRENCY,
      items: lines.reduce((n, l) => n + l.qty, 0),
      product_ids: lines.map((l) => l.id).join(","),
    });
    saveCart([]);
    // A real navigation right after the event: the tracker hands its queue to the browser
    // (sendBeacon / keepalive fetch) as the page goes away.
    location.href = `order.html?id=${encodeURIComponent(orderId)}&total=${total}`;
  });
  main.replaceChildren(el("h1", {}, "Checkout"),
    el("ul", {}, ...lines.map((l) => el("li", {}, `${l.product.name} × ${l.qty}`))), form);
}

function orderPage() {
  const q = new URLSearchParams(location.search);
  document.getElementById("order-id").textContent = q.get("id") || "?";
  document.getElementById("order-total").textContent = money(Number(q.get("total")) || 0);
}

header();
const pages = { list: listPage, product: productPage, cart: cartPage, login: loginPage, checkout: checkoutPage, order: orderPage };
pages[document.body.dataset.page]?.();
