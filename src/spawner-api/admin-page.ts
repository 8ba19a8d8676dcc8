/**
 * Serves the admin usage page (/admin/): static files built from src/admin-ui into dist/admin-ui. The
 * files hold no data and need no token; the page reads the admin API with the token the administrator
 * pastes, so the API's own checks decide what anyone sees. A strict CSP keeps the page to its own files.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { HttpError } from './errors';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Where the built page is: beside the compiled code (dist/admin-ui), or dist/ of the repository when running from src/. */
export function adminUiDir(): string | undefined {
  const candidates = [path.join(__dirname, '..', 'admin-ui'), path.join(__dirname, '..', '..', 'dist', 'admin-ui')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'page.js')) && fs.existsSync(path.join(d, 'index.html')));
}

export function createAdminPageRouter(dir: string | undefined = adminUiDir()): Router {
  const r = Router();
  r.use('/admin', function adminPageHeaders(_req: Request, res: Response, next: NextFunction) {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-cache');
    next();
  });
  if (!dir) {
    r.get(['/admin', '/admin/*rest'], () => {
      throw new HttpError(503, 'the admin page is not built: run `npm run build` (it compiles src/admin-ui into dist/admin-ui)');
    });
    return r;
  }
  // Only the page's own files; dot-files and directory listings are never served.
  r.use('/admin', express.static(dir, { index: 'index.html', redirect: true, dotfiles: 'ignore', fallthrough: true }));
  r.use('/admin', function adminPageMissing(req: Request) {
    throw new HttpError(404, `no such file of the admin page: ${req.path.slice(0, 100)}`);
  });
  return r;
}
