// The API reference at /docs: swagger-ui (vendored, see vendor/VENDORED.md) over this
// gateway's own /openapi.json. A file of its own, not an inline script: the page's
// Content-Security-Policy allows scripts from this origin only.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
