import { readFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/** Where `npm run build` (vite, in apps/web) writes the viewer; the same from apps/api/src and apps/api/dist. */
export const defaultWebDirectory = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

/** The API's own paths: never answered by the viewer, so unknown ones stay JSON 404s. */
const apiPath = /^\/(v1|health|docs|metrics)(\/|$)/;
/** The viewer's client-side routes, all answered with its index.html. */
const viewerRoute = /^\/($|index\.html$|datasets(\/|$)|policies(\/|$)|trainings(\/|$))/;

const notBuilt = [
  "Kura's web viewer is not built.",
  '',
  'Build it with `npm run build` at the repository root (or `npm run build -w apps/web`); `npm start` builds it too.',
  'The API itself is running: /v1 (see /docs), /health, /metrics.',
  '',
].join('\n');

// The viewer loads only its own scripts and styles and talks only to this origin; frames come as blob: URLs.
const contentSecurityPolicy = [
  "default-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Serves the web viewer (apps/web/dist) at `/`: its files (Vite's hashed `assets/` cached for a
 * year, everything else revalidated) and its index.html for the client-side routes (`/`,
 * `/datasets…`, `/policies…`, `/trainings…`). `/v1`, `/health`, `/docs` and `/metrics` are left to the API, and a
 * file that does not exist falls through to its JSON 404. Without a build, the routes answer a short
 * text saying how to make one. The folder is read on each request, so a build made while the
 * server runs is picked up.
 */
export function webViewer(options: { directory: string }): RequestHandler {
  const hashedAssets = join(options.directory, 'assets') + sep;
  const files = express.static(options.directory, {
    index: false,
    redirect: false,
    fallthrough: true,
    setHeaders(response, path) {
      response.setHeader('X-Content-Type-Options', 'nosniff');
      response.setHeader(
        'Cache-Control',
        path.startsWith(hashedAssets) ? 'public, max-age=31536000, immutable' : 'public, max-age=0, must-revalidate',
      );
    },
  });
  return (request: Request, response: Response, next: NextFunction): void => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || apiPath.test(request.path)) {
      next();
      return;
    }
    if (viewerRoute.test(request.path)) {
      sendIndex(options.directory, response).catch(next);
      return;
    }
    files(request, response, next);
  };
}

async function sendIndex(directory: string, response: Response): Promise<void> {
  let html: Buffer;
  try {
    html = await readFile(join(directory, 'index.html'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && (error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw error;
    response.status(503).type('text/plain; charset=utf-8').setHeader('Cache-Control', 'no-store').send(notBuilt);
    return;
  }
  response
    .status(200)
    .type('text/html; charset=utf-8')
    .setHeader('Cache-Control', 'no-cache')
    .setHeader('X-Content-Type-Options', 'nosniff')
    .setHeader('Content-Security-Policy', contentSecurityPolicy)
    .send(html);
}
