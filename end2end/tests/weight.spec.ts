import { expect, Page, test } from '@playwright/test';
import { hydrated, signInAdmin, watchConsole } from './helpers';

// What a first visit costs an admin on a slow connection: every byte the browser receives
// (compressed, headers included) until the page has hydrated, with the cache disabled. The
// budget is the figure the release build reaches plus a margin, so the weight cannot creep back;
// the README gives the figures per page (463–467 KB on 2026-12-07; the target is under 300 KB).
const BUDGET_BYTES = 480 * 1024;

test.describe.configure({ mode: 'serial' });

/** Bytes received while `visit` loads a page and it hydrates, and the URLs that came from the
 *  network rather than the cache. */
async function transfer(page: Page, cache: 'disabled' | 'enabled', visit: () => Promise<void>) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: cache === 'disabled' });
  let bytes = 0;
  const fromNetwork: string[] = [];
  const urls = new Map<string, string>();
  const cached = new Set<string>();
  cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
  cdp.on('Network.requestServedFromCache', (e) => cached.add(e.requestId));
  const files: { path: string; cacheControl: string }[] = [];
  cdp.on('Network.responseReceived', (e) => {
    if (e.response.fromDiskCache || e.response.fromPrefetchCache) cached.add(e.requestId);
    const path = new URL(e.response.url).pathname;
    const headers = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    if (path.startsWith('/pkg/')) files.push({ path, cacheControl: headers['cache-control'] ?? '' });
  });
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
    if (!cached.has(e.requestId)) fromNetwork.push(new URL(urls.get(e.requestId) ?? 'http://x/').pathname);
  });
  await visit();
  await hydrated(page);
  await page.waitForLoadState('networkidle');
  await cdp.detach();
  return { bytes, fromNetwork, files };
}

test('a first visit stays within its budget, and a repeat visit sends only the page', async ({ page }) => {
  const errors = watchConsole(page);
  await page.context().clearCookies();
  const signIn = await transfer(page, 'disabled', () => page.goto('/login').then(() => {}));
  console.log(`first load, sign-in page: ${Math.round(signIn.bytes / 1024)} KB`);
  expect(signIn.bytes).toBeLessThan(BUDGET_BYTES);

  await signInAdmin(page);
  const pages = [
    ['Connected apps', '/settings/integrations/connected-apps'],
    ['Marketplace', '/marketplace'],
  ];
  // After the sync tests (the whole suite), a sync's setup and its Health page too.
  await page.goto('/settings/integrations/connected-apps/pipedrive');
  const setup = await page.locator('a[href^="/settings/integrations/connected-apps/pipedrive/"][href*="/sync"]').first().getAttribute('href', { timeout: 2_000 }).catch(() => null);
  if (setup) pages.push(['sync setup', setup]);
  await page.goto('/settings/integrations/syncs');
  const health = await page.locator('a[href^="/settings/integrations/syncs/"]').first().getAttribute('href', { timeout: 2_000 }).catch(() => null);
  if (health) pages.push(['Sync health', health]);
  for (const [name, path] of pages) {
    const first = await transfer(page, 'disabled', () => page.goto(path).then(() => {}));
    console.log(`first load, ${name}: ${Math.round(first.bytes / 1024)} KB`);
    expect(first.bytes, name).toBeLessThan(BUDGET_BYTES);
    // The script, bundle and style sheet, each named after its content and kept for good.
    expect(first.files.map((f) => f.path.replace(/\.[A-Za-z0-9_-]{22}\./, '.<hash>.')).sort(), name).toEqual(
      ['/pkg/tandem.<hash>.css', '/pkg/tandem.<hash>.js', '/pkg/tandem.<hash>.wasm'],
    );
    for (const file of first.files) expect(file.cacheControl, file.path).toBe('public, max-age=31536000, immutable');
    // The script, bundle and style sheet are named after their content and kept: the next
    // visit asks the network for the page alone.
    await page.goto('/settings/users');
    await hydrated(page);
    const again = await transfer(page, 'enabled', () => page.goto(path).then(() => {}));
    const assets = again.fromNetwork.filter((p) => p.startsWith('/pkg/'));
    expect(assets, `${name}: files fetched again`).toEqual([]);
  }
  expect(errors).toEqual([]);
});
