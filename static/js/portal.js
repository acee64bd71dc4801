// Starts the NHS.UK frontend components. Loaded as a module; no inline script anywhere (CSP).
import { initAll } from "../nhsuk/nhsuk-frontend.min.js";

// NHS.UK frontend only enhances components on a body that declares support for them.
document.body.classList.add("nhsuk-frontend-supported");
initAll();

// Regions that refresh themselves (hx-trigger="every Ns") must not move what the reader is looking at:
// before the swap, note where the first element with an id below the top of the window sits; after
// it, scroll by however far that element moved (content above it may have grown or shrunk).
let anchor = null;
document.body.addEventListener("htmx:beforeSwap", (event) => {
  if (!event.detail.requestConfig || event.detail.requestConfig.verb !== "get") return;
  const target = event.detail.target;
  anchor = null;
  for (const element of document.querySelectorAll("main [id]")) {
    if (target.contains(element)) continue;
    const top = element.getBoundingClientRect().top;
    if (top >= 0) {
      anchor = { id: element.id, top };
      break;
    }
  }
});
document.body.addEventListener("htmx:afterSettle", () => {
  if (!anchor) return;
  const element = document.getElementById(anchor.id);
  if (element) window.scrollBy(0, element.getBoundingClientRect().top - anchor.top);
  anchor = null;
});
