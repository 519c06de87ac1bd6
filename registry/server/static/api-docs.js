// Starts Swagger UI (served by this server, /static/swagger-ui/) on /api/docs; a file, not an inline script (CSP).
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    // No deep links: they put a link inside each operation's expand button (axe: nested-interactive), and a
    // keyboard or screen-reader user then meets two controls where there is one.
    deepLinking: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
