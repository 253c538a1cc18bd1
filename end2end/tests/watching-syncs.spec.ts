import { test, expect, Page, APIRequestContext } from '@playwright/test';
import { bucketCount as count, eventually, hydrated, signInAdmin, watchConsole } from './helpers';

// Sync health and history, after syncs.spec.ts saved the deals sync (this file runs after it: files run
// in name order): the engine in the e2e server runs it every few seconds against both sandboxes.
test.describe.configure({ mode: 'serial' });

const port = Number(process.env.TANDEM_E2E_PORT ?? '3100');
const hubspot = `http://127.0.0.1:${port + 1}`;
const pipedrive = `http://127.0.0.1:${port + 2}`;

async function openDealSync(page: Page) {
  await page.goto('/settings/integrations/syncs');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Sync health', level: 1 })).toBeVisible();
  await page.getByRole('link', { name: 'Pipedrive (Sandbox) deals sync' }).click();
  await expect(page.getByRole('heading', { name: /^Pipedrive \(Sandbox\) deals sync/, level: 1 })).toBeVisible();
  await hydrated(page);
}

async function faults(request: APIRequestContext, base: string, config: object) {
  const r = await request.put(`${base}/_sandbox/faults`, { data: config });
  expect(r.ok()).toBeTruthy();
}

test('Health counts, a failing record retried, history, chart, timeline with a conflict, CSV export', async ({ page, request }) => {
  test.setTimeout(240_000);
  const errors = watchConsole(page);
  await signInAdmin(page);
  await openDealSync(page);
  await eventually(page, 'the first successful sync', async () => (await page.locator('[data-fact="last-success"]').innerText()) !== 'Never');

  // The counts match the sandboxes: every deal is one record; a record in sync is a deal on each
  // side, an excluded one (unmapped stage, filter) exists on its own side only.
  let figures = '';
  await eventually(page, 'Health counts that match both sandboxes', async () => {
    const hs = await (await request.get(`${hubspot}/_sandbox/summary`)).json();
    const pd = await (await request.get(`${pipedrive}/_sandbox/summary`)).json();
    const [inSync, excluded, failing] = [await count(page, 'in_sync'), await count(page, 'excluded'), await count(page, 'failing')];
    figures = `HubSpot ${hs.records.deals.live} + Pipedrive ${pd.deals.live} deals; in sync ${inSync}, excluded ${excluded}, failing ${failing}`;
    return inSync > 0 && failing === 0 && hs.records.deals.live + pd.deals.live === 2 * inSync + excluded;
  }).catch((e) => { throw new Error(`${e.message}: ${figures}`); });
  let reasons = 0;
  for (const li of await page.locator('[data-bucket="excluded"] li[data-reason]').all()) {
    reasons += Number((await li.locator('.count').innerText()).replace(/,/g, ''));
  }
  expect(reasons, 'the excluded reasons add up to the excluded count').toBe(await count(page, 'excluded'));

  // Excluded by reason: each count links to exactly that many records.
  const reason = page.locator('[data-bucket="excluded"] li[data-reason]').first();
  await expect(reason).toBeVisible();
  const label = await reason.getByRole('link').innerText();
  const excludedCount = Number((await reason.locator('.count').innerText()).replace(/,/g, ''));
  expect(excludedCount).toBeGreaterThan(0);
  await reason.getByRole('link').click();
  await expect(page.getByRole('heading', { name: `Excluded: ${label}` })).toBeVisible();
  await expect(page.locator('tr[data-bucket="excluded"]')).toHaveCount(Math.min(excludedCount, 50));
  await page.goBack();

  // Pipedrive refuses new deals (a validation error): a new HubSpot deal fails to sync.
  await faults(request, pipedrive, { rate_400: 1.0, only_method: 'POST', only_path: '/api/v2/deals' });
  const name = `Dashboard test ${Date.now()}`;
  const created = await request.post(`${hubspot}/_sandbox/objects/deals`, {
    data: { properties: { dealname: name, amount: '5000', pipeline: 'default', dealstage: 'appointmentscheduled' } },
  });
  expect(created.status()).toBe(201);
  const hubspotId = (await created.json()).id as string;
  await eventually(page, 'the failing record', async () => (await count(page, 'failing')) > 0);
  const failing = page.locator('[data-bucket="failing"]');
  await expect(failing.locator('[data-reason="validation"]')).toContainText('Validation');
  await failing.getByRole('link', { name: 'Validation' }).click();
  const row = page.locator('tr', { hasText: name });
  await expect(row).toContainText('Failing: Validation');
  await expect(row).toContainText('sandbox fault');
  await page.screenshot({ path: 'test-results/health-failing.png', fullPage: true });

  // The fault is fixed: Retry syncs the record at once.
  await faults(request, pipedrive, {});
  await hydrated(page);
  // The engine runs at once: the record may leave this list before the next look at it.
  const recordPage = await row.getByRole('link', { name }).getAttribute('href');
  await row.getByRole('button', { name: 'Retry' }).click();
  await expect(page.getByRole('status')).toHaveText('Retrying 1 record now. Its status updates when the run ends.');
  await page.goto(recordPage ?? '');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: new RegExp(`^${name}`) })).toBeVisible();
  await eventually(page, 'the retried record in sync', async () => (await page.locator('#record-title .badge').innerText()) === 'In sync');
  await expect(page.locator('tr[data-event="created"]')).toContainText('Created in Pipedrive (Sandbox)');
  const pipedriveId = (await page.locator('.facts dd code').nth(1).innerText()).trim();
  expect(pipedriveId).toMatch(/^\d+$/);

  // Both sides change the amount within five minutes: a conflict, decided by the sync's rule.
  const now = Date.now();
  await request.patch(`${hubspot}/_sandbox/objects/deals/${hubspotId}`, { data: { properties: { amount: '7000' }, timestamp: now } });
  await request.patch(`${pipedrive}/_sandbox/deals/${pipedriveId}`, { data: { fields: { value: 6500 }, timestamp: now + 1_000 } });
  await eventually(page, 'the conflict in the timeline', async () => (await page.locator('tr[data-event="conflict"]').count()) > 0);
  const conflict = page.locator('tr[data-event="conflict"]').first();
  await expect(conflict).toContainText(/Conflict decided by “Default to/);
  await expect(conflict).toContainText('HubSpot had 7000, Pipedrive (Sandbox) had 6500');
  await page.screenshot({ path: 'test-results/record-timeline.png', fullPage: true });

  // Health: the chart, and the failure gone.
  await page.getByRole('link', { name: 'Health', exact: true }).click();
  await expect(page.locator('[data-bucket="failing"] .count-big')).toHaveText('0');
  const chart = page.locator('figure.chart');
  await expect(chart.locator('svg[role="img"]')).toBeVisible();
  expect(Number(await chart.getAttribute('data-synced'))).toBeGreaterThan(0);
  await page.getByRole('link', { name: 'Last 7 days' }).click();
  await expect(page.locator('figure.chart[data-range="7d"] rect.bar-synced')).toHaveCount(7);
  await page.screenshot({ path: 'test-results/health.png', fullPage: true });

  // History: the runs, filtered; a run opens to its events; the CSV export downloads.
  await page.getByRole('link', { name: 'History', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Runs' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Outcome').selectOption({ label: 'Some records failed' });
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/outcome=partial/);
  await page.screenshot({ path: 'test-results/history.png', fullPage: true });
  // Ten columns fit: the table scrolls in its card, the page never sideways.
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  expect(widths[0]).toBeLessThanOrEqual(widths[1]);
  const partial = page.locator('tr[data-run]');
  await expect(partial.first()).toContainText('Some records failed');
  // Each run's calls by what they were for.
  await expect(partial.first()).toContainText(/\d+ reads \d+ · writes [1-9]\d* lookups \d+ · schema \d+/);
  await partial.first().getByRole('link').click();
  await expect(page.locator('section', { has: page.locator('#run-title') }).locator('dl.facts')).toContainText(/API calls\s*\d+: reads \d+ · writes [1-9]/);
  await expect(page.locator('tr[data-event="failed"]', { hasText: name })).toContainText('Writing to Pipedrive (Sandbox) failed (Validation)');
  await page.screenshot({ path: 'test-results/run.png', fullPage: true });
  await page.getByRole('link', { name: 'History', exact: true }).click();
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Export record events (CSV)' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^tandem-events-.*\.csv$/);
  const csv = await (await import('fs')).promises.readFile(await file.path(), 'utf8');
  expect(csv.split('\r\n')[0]).toBe('event_id,at,run_id,record_id,record_name,event,side,field,old_value,new_value,hubspot_value,app_value,winner,rule,category,message');
  expect(csv).toContain(`,${name},conflict,`);
  expect(errors).toEqual([]);
});

test('the contacts sync links and creates contacts: its Health counts match both sandboxes', async ({ page, request }) => {
  test.setTimeout(120_000);
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto('/settings/integrations/syncs');
  await hydrated(page);
  await page.getByRole('link', { name: 'Pipedrive (Sandbox) contacts sync' }).click();
  await expect(page.getByRole('heading', { name: /^Pipedrive \(Sandbox\) contacts sync/, level: 1 })).toBeVisible();
  await eventually(page, 'the contacts sync running', async () => (await page.locator('[data-fact="last-success"]').innerText()) !== 'Never');
  await expect(page.locator('.badge', { hasText: 'Syncing' }).first()).toBeVisible();
  // Every contact is one record: in sync means a HubSpot contact and a Pipedrive person.
  let figures = '';
  await eventually(page, 'contacts counts that match both sandboxes', async () => {
    const hs = await (await request.get(`${hubspot}/_sandbox/summary`)).json();
    const pd = await (await request.get(`${pipedrive}/_sandbox/summary`)).json();
    const [inSync, excluded, failing] = [await count(page, 'in_sync'), await count(page, 'excluded'), await count(page, 'failing')];
    figures = `HubSpot ${hs.records.contacts.live} contacts + Pipedrive ${pd.persons.live} persons; in sync ${inSync}, excluded ${excluded}, failing ${failing}`;
    return inSync > 0 && failing === 0 && hs.records.contacts.live + pd.persons.live === 2 * inSync + excluded;
  }).catch((e) => { throw new Error(`${e.message}: ${figures}`); });
  await page.screenshot({ path: 'test-results/contacts-health.png', fullPage: true });
  expect(errors).toEqual([]);
});

test("HubSpot's card shows its window and the calls Tandem's syncs used of it", async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto('/settings/integrations/connected-apps/hubspot');
  await hydrated(page);
  const budget = page.getByRole('region', { name: 'API limit' });
  // The syncs above learned HubSpot's window from its headers: 110 calls per ten seconds, 88 of
  // them Tandem's (80 %).
  await expect(budget).toContainText('HubSpot (Sandbox) allows 110 calls every 10 seconds. Tandem uses up to 88 of them (80 %)');
  await expect(budget.getByText('Calls in the last 10 seconds')).toBeVisible();
  const today = await budget.locator('dt', { hasText: 'Calls today (UTC)' }).locator('xpath=following-sibling::dd').innerText();
  expect(Number(today.replace(/,/g, ''))).toBeGreaterThan(0);
  await expect(budget.getByLabel("Tandem's share of the limit (%)")).toHaveValue('80');
  await page.screenshot({ path: 'test-results/hubspot-api-limit.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('the progress bar moves during a large initial sync', async ({ page, request }) => {
  test.setTimeout(240_000);
  const errors = watchConsole(page);
  // Many new Pipedrive deals, then a new settings version: the initial sync starts again.
  const seeded = await request.post(`${pipedrive}/_sandbox/seed`, { data: { deals: 30000, seed: 7 } });
  expect(seeded.ok()).toBeTruthy();
  await signInAdmin(page);
  // The Pipedrive deals sync (Zoho CRM's has its own), by the id in its Health page's address.
  await openDealSync(page);
  const syncId = new URL(page.url()).pathname.split('/').pop();
  const origin = `http://127.0.0.1:${port}`;
  const syncs = await (await page.request.post('/api/syncs', { headers: { origin } })).json();
  const deal = syncs.find((s: { id: string }) => s.id === syncId);
  expect(deal.settings.object).toBe('Deal');
  const saved = await page.request.post('/api/save_sync', { headers: { origin }, data: { connection_id: deal.connection_id, settings: deal.settings } });
  expect(saved.ok()).toBeTruthy();
  await openDealSync(page);
  await eventually(page, 'the progress bar', async () => (await page.locator('.progress-bar').count()) > 0);
  await hydrated(page);
  const figures = page.locator('.progress-figures');
  const first = await figures.getAttribute('data-done');
  await expect(figures).not.toHaveAttribute('data-done', first ?? '', { timeout: 30_000 });
  const second = await figures.getAttribute('data-done');
  expect(Number(second)).toBeGreaterThan(Number(first));
  await expect(figures).toContainText(/records/);
  await page.screenshot({ path: 'test-results/progress.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('a second HubSpot account: chosen on its consent page, asked for at install, apps grouped under it', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto('/settings/integrations/connected-apps/hubspot');
  await hydrated(page);
  await page.getByRole('button', { name: 'Connect another HubSpot account' }).click();
  await expect(page.getByRole('heading', { name: 'Log in to HubSpot (Sandbox)' })).toBeVisible();
  await page.getByLabel('Password').fill('sandbox');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByLabel('Account').selectOption({ label: 'sandbox-portal-2.example (24681358)' });
  await page.screenshot({ path: 'test-results/consent-choose-account.png', fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(/\/connected-apps\/hubspot\?result=installed/);
  await expect(page.getByRole('region', { name: /sandbox-portal-2\.example/ }).getByText('24681358')).toBeVisible();

  // Installing an app now asks which HubSpot account it syncs with.
  await page.goto('/marketplace/pipedrive');
  await hydrated(page);
  await page.getByLabel('HubSpot account').selectOption({ label: 'sandbox-portal-2.example · portal 24681358' });
  await page.screenshot({ path: 'test-results/install-choose-hubspot.png', fullPage: true });
  await page.getByRole('button', { name: 'Install app' }).click();
  await expect(page.getByRole('heading', { name: 'Log in to Pipedrive (Sandbox)' })).toBeVisible();
  await page.getByLabel('Password').fill('sandbox');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByLabel('Account').selectOption({ label: 'Sandbox Sales Co 2 (7701235)' });
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(/\/connected-apps\/pipedrive\?result=installed/);
  const company = page.getByRole('region', { name: /Sandbox Sales Co 2/ });
  await expect(company.getByText('sandbox-portal-2.example · portal 24681358')).toBeVisible();
  await expect(company.getByRole('link', { name: 'Set up sync' })).toBeVisible();

  // Connected apps: each HubSpot account with the apps that sync with it.
  await page.goto('/settings/integrations/connected-apps');
  const group = page.getByRole('region', { name: 'Apps syncing with sandbox-portal-2.example' });
  await expect(group.getByRole('row', { name: /Sandbox Sales Co 2/ })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Apps syncing with sandbox-portal.example' })).toBeVisible();
  await page.screenshot({ path: 'test-results/connected-apps-by-hubspot-account.png', fullPage: true });

  // Its deals sync, with the defaults; Sync health lists each HubSpot account's syncs apart.
  await page.goto('/settings/integrations/connected-apps/pipedrive');
  await hydrated(page);
  await company.getByRole('link', { name: 'Set up sync' }).click();
  await expect(page.getByRole('heading', { name: 'Set up sync with Pipedrive (Sandbox)' })).toBeVisible();
  await hydrated(page);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('combobox', { name: 'Sync direction' })).toHaveValue('two_way');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('heading', { name: 'Review' })).toBeVisible();
  await page.getByRole('button', { name: 'Save and turn on' }).click();
  await expect(page.getByRole('status')).toHaveText('Deal sync saved as version 1 and turned on.');

  await page.goto('/settings/integrations/syncs');
  await hydrated(page);
  const rows = page.locator('.overview-table tbody tr');
  const names = await rows.evaluateAll((trs) => trs.map((tr) => (tr.querySelector('th')?.textContent ?? '').trim()));
  const first = names.indexOf('HubSpot account: sandbox-portal.example · portal 24681357');
  const second = names.indexOf('HubSpot account: sandbox-portal-2.example · portal 24681358');
  const newSync = names.findIndex((n) => n.includes('Sandbox Sales Co 2'));
  expect(first).toBeGreaterThanOrEqual(0);
  expect(second).toBeGreaterThan(first);
  expect(newSync).toBeGreaterThan(second);
  expect(names.slice(first + 1, second).some((n) => n.startsWith('Pipedrive (Sandbox) deals sync'))).toBeTruthy();
  await page.screenshot({ path: 'test-results/sync-health-by-hubspot-account.png', fullPage: true });
  expect(errors).toEqual([]);
});
