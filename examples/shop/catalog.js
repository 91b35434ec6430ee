// The demo shop's data: a product catalog and a few demo accounts. A real shop would get these
// from its back end; the tracking calls in shop.js would stay the same.

export const CURRENCY = "EUR";

export const PRODUCTS = [
  { id: "JKT-001", name: "Alpine Down Jacket", category: "Jacket", price: 189.9, colour: "Navy",
    text: "Warm 700-fill down with a water-repellent shell, for cold days in the city and on the trail." },
  { id: "JKT-014", name: "Rain Shell Jacket", category: "Jacket", price: 99.5, colour: "Olive",
    text: "Light, packable and fully taped: keeps you dry without the weight." },
  { id: "SHO-220", name: "Trail Runner Shoes", category: "Shoes", price: 129, colour: "Grey",
    text: "Grippy outsole, cushioned midsole, a fit that stays put on rough ground." },
  { id: "BAG-031", name: "Commuter Backpack 22 L", category: "Backpack", price: 74.95, colour: "Black",
    text: "Padded laptop sleeve, a hidden pocket for keys and passport, reflective details." },
  { id: "KNT-007", name: "Merino Beanie", category: "Accessories", price: 24, colour: "Rust",
    text: "Soft, warm and breathable merino wool." },
  { id: "TEE-105", name: "Organic Cotton T-shirt", category: "T-shirt", price: 19.99, colour: "White",
    text: "A plain tee made well, from organic cotton." },
];

export function product(id) {
  return PRODUCTS.find((p) => p.id === id) || null;
}

/** Demo accounts; any other e-mail address logs in as a new customer. */
export const ACCOUNTS = [
  { email: "anna@example.com", name: "Anna Novak", customerId: "1042" },
  { email: "ben@example.com", name: "Ben Okafor", customerId: "1043" },
];

export function money(amount) {
  return new Intl.NumberFormat("en-IE", { style: "currency", currency: CURRENCY }).format(amount);
}
