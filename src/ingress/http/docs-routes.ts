import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Express } from 'express';

// The swagger-ui-dist files the page loads; the package's own index.html and initializer point
// at a demo document, so both are replaced below.
const ASSETS = ['swagger-ui.css', 'index.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png', 'favicon-16x16.png'];

// Relative URLs throughout, so the page also works behind a proxy that mounts the node under a prefix.
const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>pushwire API</title>
    <link rel="stylesheet" type="text/css" href="docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="docs/index.css">
    <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="docs/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;

// A script file rather than an inline one, so a Content-Security-Policy without 'unsafe-inline' allows it.
const INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: 'openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'StandaloneLayout',
  });
};
`;

/** GET /docs: Swagger UI for /openapi.json, served from the swagger-ui-dist package (no CDN). */
export function docsRoutes(app: Express): void {
  const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  app.get('/docs', (_req, res) => {
    res.type('html').set('cache-control', 'no-cache').send(PAGE);
  });
  app.get('/docs/', (_req, res) => {
    res.redirect(301, '../docs');
  });
  app.get('/docs/swagger-initializer.js', (_req, res) => {
    res.type('application/javascript').set('cache-control', 'no-cache').send(INITIALIZER);
  });
  app.get('/docs/:file', (req, res, next) => {
    const file = String(req.params.file);
    // Only the listed files: the package also holds source maps and demo pages nobody needs.
    if (!ASSETS.includes(file)) {
      next();
      return;
    }
    res.sendFile(join(dist, file), { maxAge: '1h' });
  });
}
