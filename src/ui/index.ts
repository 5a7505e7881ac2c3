/**
 * The dashboard served at `/ui` (docs/ui.md): its page, script, helpers
 * and stylesheet, kept as strings in TypeScript modules so they are part of
 * the compiled build and of a bundle (nothing is read from disk at run
 * time). Plain browser JavaScript, no build step. This module owns the
 * assets only: serving them (headers, CSP) is the API's route, and every
 * piece of data the page shows comes from the authenticated /v1 API.
 */
import { UI_APP_JS } from './app-js.js';
import { UI_LIB_JS } from './lib-js.js';
import { UI_FAVICON_SVG, UI_HTML } from './page.js';
import { UI_CSS } from './style-css.js';
import { UI_VIEW_JS } from './view-js.js';

export { UI_APP_JS, UI_CSS, UI_FAVICON_SVG, UI_HTML, UI_LIB_JS, UI_VIEW_JS };

export interface UiAsset {
  body: string;
  contentType: string;
}

/** The page itself, at `/ui`. */
export const UI_PAGE: UiAsset = { body: UI_HTML, contentType: 'text/html; charset=utf-8' };

/** The files under `/ui/`, by name. */
export const UI_ASSETS: ReadonlyMap<string, UiAsset> = new Map([
  ['app.js', { body: UI_APP_JS, contentType: 'text/javascript; charset=utf-8' }],
  ['view.js', { body: UI_VIEW_JS, contentType: 'text/javascript; charset=utf-8' }],
  ['lib.js', { body: UI_LIB_JS, contentType: 'text/javascript; charset=utf-8' }],
  ['style.css', { body: UI_CSS, contentType: 'text/css; charset=utf-8' }],
  ['favicon.svg', { body: UI_FAVICON_SVG, contentType: 'image/svg+xml' }],
]);
