// The web viewer: a static bundle in dist/ that the api serves at `/` (apps/api/src/web/web-viewer.ts).
import { defineConfig } from 'vite';

export default defineConfig({
  // Preact's automatic JSX runtime (the same settings tsconfig.json gives the type checker).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // One small app: a single entry chunk is fine, and hashed file names let the api cache them for a year.
    chunkSizeWarningLimit: 300,
  },
  server: {
    // `npx vite` in apps/web during development: the api (npm start) answers /v1.
    proxy: { '/v1': 'http://localhost:8080' },
  },
});
