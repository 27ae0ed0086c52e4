// Starts Swagger UI on the schema that /schema/swagger carries in a JSON block. A file,
// not an inline script, so the page holds under a Content-Security-Policy of
// script-src 'self'.

const schema = JSON.parse(document.getElementById("openapi-schema").textContent);
// The key the web page (/ui/) keeps for this tab, if any, goes with "Try it out".
const key = sessionStorage.getItem("ttsframe.apiKey");

window.ui = SwaggerUIBundle({
  spec: schema,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  requestInterceptor: (request) => {
    if (key && !request.headers.Authorization) {
      request.headers.Authorization = `Bearer ${key}`;
    }
    return request;
  },
});
