// The demo storefront's own script, shared by its pages (home, product, bag): who the visitor is
// playing, the bag kept in localStorage, and adding the widget's script tag. Loaded in <head> without
// async, so each page can call these right after the markup they fill, before that markup is painted:
// the page never moves once shown. The widget itself needs none of this; a real storefront prints
// the widget's tag from its server (see docs/embedding.md).
(() => {
  const shopperKey = "northwind-shopper";
  const bagKey = "northwind-bag";
  const personas = {
    "demo-full-price": "Buys dresses, heels, jewellery and fragrance online at full price: no markdowns in the picks.",
    "demo-store-loyal":
      "Shops coffee, tea and kitchen in store with a loyalty card, mostly on promotion; one web order linked the login.",
    "demo-fading": "Bought skincare and makeup every two weeks for a year; nothing for almost four weeks now.",
    "demo-new": "One order of sneakers and denim a few days ago.",
    anonymous: "Not signed in: the popular shelf.",
  };

  /** Storage can be off (private modes, policies): the demo then forgets between pages, and still works. */
  function read(key, fallback) {
    try {
      const value = localStorage.getItem(key);
      return value === null ? fallback : JSON.parse(value);
    } catch {
      return fallback;
    }
  }
  function write(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch {}
  }

  /**
   * Remembers the persona. Another persona empties the bag: its items, and the recommendation ids that
   * came with them, were the previous shopper's, and an order must not carry another shopper's ids.
   */
  function choose(persona) {
    if (persona !== read(shopperKey, "demo-full-price")) write(bagKey, []);
    write(shopperKey, persona);
  }

  /** `?shopper=` picks the persona and is remembered, so links between pages keep it. */
  function shopper() {
    const asked = new URLSearchParams(location.search).get("shopper");
    if (asked) choose(asked in personas ? asked : "anonymous");
    const chosen = read(shopperKey, "demo-full-price");
    return chosen in personas ? chosen : "anonymous";
  }

  /** The bag: [{ id, title, price, recommendationId, quantity }], newest last; pictures and links come from the id. */
  function bag() {
    const items = read(bagKey, []);
    return Array.isArray(items) ? items.filter((item) => item && typeof item.id === "string") : [];
  }

  function demoBar() {
    const current = shopper();
    const select = document.getElementById("shopper");
    select.value = current;
    select.addEventListener("change", () => {
      choose(select.value);
      // A ?shopper= in the address would win over the choice just made: carry the new one instead.
      const url = new URL(location.href);
      if (url.searchParams.has("shopper")) url.searchParams.set("shopper", select.value);
      location.assign(url);
    });
    document.getElementById("persona").textContent = personas[current];
  }

  function header() {
    const current = shopper();
    document.getElementById("greeting").textContent = current === "anonymous" ? "Sign in" : `Hi, ${current}`;
    const count = bag().reduce((sum, item) => sum + (item.quantity || 1), 0);
    document.getElementById("bag-count").textContent = String(count);
  }

  /** The product page's button: `data-product` holds the product as JSON; `patron_rec` came with the link. */
  function addToBag(button) {
    button.addEventListener("click", () => {
      const product = JSON.parse(button.dataset.product);
      const recommendationId = new URLSearchParams(location.search).get("patron_rec");
      const items = bag();
      const held = items.find((item) => item.id === product.id);
      if (held) {
        held.quantity = (held.quantity || 1) + 1;
        if (recommendationId) held.recommendationId = recommendationId;
      } else {
        items.push({ ...product, recommendationId, quantity: 1 });
      }
      write(bagKey, items);
      header();
      document.getElementById("added").textContent = `Added ${product.title} to your bag.`;
    });
  }

  function line(item) {
    const row = document.createElement("li");
    const image = row.appendChild(document.createElement("img"));
    image.src = `/demo/images/${encodeURIComponent(item.id)}.svg`;
    image.alt = "";
    image.width = 96;
    image.height = 96;
    const text = row.appendChild(document.createElement("div"));
    const title = text.appendChild(document.createElement("a"));
    // Only the shop's own product pages: whatever else sits in storage never becomes a link.
    title.href = `/demo/products/${encodeURIComponent(item.id)}`;
    title.textContent = item.title;
    text.appendChild(document.createElement("p")).textContent = `${item.price} · quantity ${item.quantity || 1}`;
    if (item.recommendationId) {
      const note = text.appendChild(document.createElement("p"));
      note.className = "from-shelf";
      note.textContent = "From a Patron shelf: the order carries its recommendationId, so the sale is attributed.";
    }
    const remove = row.appendChild(document.createElement("button"));
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${item.title}`);
    remove.addEventListener("click", () => {
      write(
        bagKey,
        bag().filter((held) => held.id !== item.id),
      );
      // The shelf below asked for picks without the bag's items: ask again without this one.
      location.reload();
    });
    return row;
  }

  function renderBag() {
    const items = bag();
    const list = document.getElementById("bag-items");
    for (const item of items) list.appendChild(line(item));
    document.getElementById("bag-empty").hidden = items.length > 0;
  }

  /**
   * Every shelf leaves out what is already in the bag (`data-exclude`), then the widget's tag is added
   * exactly as a storefront's server would print it. The demo has no login, so it first asks the
   * demo-only /demo/token route for the persona's token; anonymous visitors get the tag without one.
   */
  function loadWidget() {
    const ids = bag().map((item) => item.id);
    if (ids.length)
      for (const shelf of document.querySelectorAll("[data-patron]")) shelf.dataset.exclude = ids.join(",");
    const current = shopper();
    const addWidget = (token) => {
      const script = document.createElement("script");
      script.async = true;
      script.src = "/widget/v1.js";
      if (token) script.setAttribute("data-token", token);
      document.head.appendChild(script);
    };
    if (current === "anonymous") return addWidget("");
    fetch(`/demo/token?account=${encodeURIComponent(current)}`)
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((body) => addWidget(body.data.token))
      .catch(() => addWidget(""));
  }

  window.northwind = { demoBar, header, addToBag, renderBag, loadWidget };
})();
