// Starts the NHS.UK frontend components. Loaded as a module; no inline script anywhere (CSP).
import { initAll } from "../nhsuk/nhsuk-frontend.min.js";

initAll();
