// Starts the NHS.UK frontend components. Loaded as a module; no inline script anywhere (CSP).
import { initAll } from "../nhsuk/nhsuk-frontend.min.js";

// NHS.UK frontend only enhances components on a body that declares support for them.
document.body.classList.add("nhsuk-frontend-supported");
initAll();
