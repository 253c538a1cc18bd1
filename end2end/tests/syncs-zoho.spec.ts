import { test, expect, Page, APIRequestContext } from '@playwright/test';
import { authorizeOnSandbox, bucketCount as count, connectHubSpot, eventually, hydrated, signInAdmin, watchConsole } from './helpers';

// Zoho CRM, the second app: installed from the Marketplace through its sandbox's sign-in page and
// Zoho's own consent words (Accept, Reject); a deals sync set up with Zoho's pipelines in the stage
// grid, whose Health counts add up to both sandboxes' deals; a contacts sync that links a contact
// both apps have by its email. Runs before syncs.spec.ts (files run in name order) and turns its
// syncs off at the end, so the later files' own syncs see a quiet Zoho.
test.describe.configure({ mode: 'serial' });

const port = Number(process.env.TANDEM_E2E_PORT ?? '3100');
const hubspot = `http://127.0.0.1:${port + 1}`;
const zoho = `http://127.0.0.1:${port + 3}`;
const appPage = '/settings/integrations/connected-apps/zoho';

async function summaries(request: APIRequestContext) {
  const hs = await (await request.get(`${hubspot}/_sandbox/summary`)).json();
  const zo = await (await request.get(`${zoho}/_sandbox/summary`)).json();
  return { hs, zo };
}

async function openSync(page: Page, object: 'deals' | 'contacts') {
  await page.goto('/settings/integrations/syncs');
  await hydrated(page);
  await page.getByRole('link', { name: `Zoho CRM (Sandbox) ${object} sync` }).click();
  await expect(page.getByRole('heading', { name: new RegExp(`^Zoho CRM \\(Sandbox\\) ${object} sync`), level: 1 })).toBeVisible();
  await hydrated(page);
}

test('install Zoho CRM from the Marketplace with Accept; Reject installs nothing', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);

  await page.goto('/marketplace');
  await hydrated(page);
  await page.getByLabel('Search apps').fill('zoho');
  const card = page.getByRole('link', { name: 'Zoho CRM (Sandbox)' });
  await expect(card).toBeVisible();
  await card.click();

  await expect(page).toHaveURL(/\/marketplace\/zoho$/);
  await expect(page.getByRole('heading', { name: 'Zoho CRM (Sandbox)', level: 1 })).toBeVisible();
  const shared = page.getByRole('region', { name: 'Shared data' });
  await expect(shared.getByRole('row', { name: /Deal/ }).first()).toBeVisible();
  await expect(shared.getByRole('row', { name: /Contact/ }).first()).toBeVisible();
  await expect(shared.getByRole('row', { name: /Compan/ }).first()).toBeVisible();
  await hydrated(page);

  // Reject first: nothing is installed, and the page says so.
  await page.getByRole('button', { name: 'Install app' }).click();
  await expect(page).toHaveURL(/127\.0\.0\.1:\d+\/oauth\/v2\/auth\?/);
  await authorizeOnSandbox(page, 'Zoho CRM', 'Reject');
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps\/zoho\?result=denied$/);
  await expect(page.getByRole('alert')).toContainText('Nothing was installed');
  await expect(page.getByRole('region', { name: /Sandbox Sales Co/ })).toHaveCount(0);

  // Then Accept: the organization is connected, named as Zoho names it.
  await page.goto('/marketplace/zoho');
  await hydrated(page);
  await page.getByRole('button', { name: 'Install app' }).click();
  await authorizeOnSandbox(page, 'Zoho CRM', 'Accept');
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps\/zoho\?result=installed/);
  await expect(page.getByRole('status')).toHaveText('Zoho CRM (Sandbox) is connected. Next, set up a sync.');
  const account = page.getByRole('region', { name: /Sandbox Sales Co/ });
  await expect(account.getByText('Connected', { exact: true })).toBeVisible();
  await expect(account.getByText('Organization', { exact: true })).toBeVisible();
  await expect(account.getByText('5725767', { exact: true })).toBeVisible();
  await page.screenshot({ path: 'test-results/zoho-connected.png', fullPage: true });

  await page.getByRole('link', { name: 'Connected apps' }).first().click();
  await expect(page.getByRole('row', { name: /Zoho CRM \(Sandbox\) Sandbox Sales Co/ })).toBeVisible();
  expect(errors).toEqual([]);
});

test('set up a Zoho deals sync in the stage grid: Auto-map and one manual stage; Health adds up to both sandboxes', async ({ page, request }) => {
  test.setTimeout(180_000);
  const errors = watchConsole(page);
  await signInAdmin(page);
  await connectHubSpot(page);
  await page.goto(appPage);
  await hydrated(page);
  await page.getByRole('link', { name: 'Set up sync' }).click();
  await expect(page.getByRole('heading', { name: 'Set up sync with Zoho CRM (Sandbox)' })).toBeVisible();
  await hydrated(page);
  await expect(page.getByRole('radio', { name: 'Deals', exact: true })).toBeChecked();
  await page.getByRole('button', { name: 'Next' }).click();

  // The stage grid with Zoho's Standard pipeline, as Auto-map left it.
  const first = page.getByRole('group', { name: 'Pipeline pair 1' });
  await expect(first.getByLabel('Select a HubSpot pipeline')).toHaveValue('default');
  await expect(first.getByLabel('Zoho CRM (Sandbox) pipeline').locator('option:checked')).toHaveText('Standard');
  await expect(page.getByRole('note').filter({ hasText: 'Tip: map' })).toHaveText(
    "Tip: map HubSpot's Closed Won and Closed Lost stages to Zoho CRM (Sandbox)'s Closed Won and Closed Lost, so closed deals show as closed on both sides.",
  );
  await expect(first.getByLabel('Closed Won').locator('option:checked')).toHaveText('Closed Won');
  await expect(first.getByLabel('Closed Lost').locator('option:checked')).toHaveText('Closed Lost');
  await expect(first.getByLabel('Appointment Scheduled').locator('option:checked')).not.toHaveText('Qualification');
  const auto = await first.getByText('Auto-mapped').count();
  expect(auto).toBeGreaterThanOrEqual(2);
  // One manual choice, kept by Auto-map.
  await first.getByLabel('Appointment Scheduled').selectOption({ label: 'Qualification' });
  await first.getByRole('button', { name: 'Auto-map' }).click();
  await expect(first.getByLabel('Appointment Scheduled').locator('option:checked')).toHaveText('Qualification');
  await expect(first.getByText('Auto-mapped')).toHaveCount(auto);
  await page.screenshot({ path: 'test-results/zoho-stage-grid.png', fullPage: true });
  await page.getByRole('button', { name: 'Next' }).click();

  await expect(page.getByRole('heading', { name: 'Field mappings' })).toBeVisible();
  await expect(page.getByLabel('HubSpot property of mapping 1')).toHaveValue('dealname');
  await expect(page.getByLabel('App field of mapping 1')).toHaveValue('Deal_Name');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('heading', { name: 'Review' })).toBeVisible();
  await page.getByRole('button', { name: 'Save and turn on' }).click();
  await expect(page.getByRole('status')).toHaveText('Deal sync saved as version 1 and turned on.');

  // Sync health: every deal is one record; in sync means a deal on each side, excluded (an
  // unmapped stage) a deal on its own side only.
  await openSync(page, 'deals');
  let figures = '';
  await eventually(page, 'Health counts that match both sandboxes', async () => {
    const { hs, zo } = await summaries(request);
    const [inSync, excluded, failing] = [await count(page, 'in_sync'), await count(page, 'excluded'), await count(page, 'failing')];
    figures = `HubSpot ${hs.records.deals.live} + Zoho ${zo.deals.live} deals; in sync ${inSync}, excluded ${excluded}, failing ${failing}`;
    return inSync > 0 && failing === 0 && hs.records.deals.live + zo.deals.live === 2 * inSync + excluded;
  }).catch((e) => { throw new Error(`${e.message}: ${figures}`); });
  await page.screenshot({ path: 'test-results/zoho-deals-health.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('a Zoho contacts sync links the contact both apps have by its email', async ({ page, request }) => {
  test.setTimeout(120_000);
  const errors = watchConsole(page);
  // Grace is in both apps, with her email in other capitals in Zoho.
  const inHubSpot = await request.post(`${hubspot}/_sandbox/objects/contacts`, {
    data: { properties: { firstname: 'Grace', lastname: 'Hopper', email: 'grace.hopper@navy.example' } },
  });
  expect(inHubSpot.status()).toBe(201);
  const inZoho = await request.post(`${zoho}/_sandbox/Contacts`, {
    data: { fields: { First_Name: 'Grace', Last_Name: 'Hopper', Email: 'Grace.Hopper@Navy.example', Phone: '+1 202 555 0142' } },
  });
  expect(inZoho.status()).toBe(201);
  await signInAdmin(page);
  await page.goto(appPage);
  await hydrated(page);
  await page.getByRole('link', { name: 'Sync more data' }).click();
  await hydrated(page);
  await page.getByRole('radio', { name: 'Contacts', exact: true }).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/\/sync\?object=contact$/);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('HubSpot property of mapping 3')).toHaveValue('email');
  await expect(page.getByLabel('App field of mapping 3')).toHaveValue('Email');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Save and turn on' }).click();
  await expect(page.getByRole('status')).toHaveText('Contact sync saved as version 1 and turned on.');

  await openSync(page, 'contacts');
  let figures = '';
  await eventually(page, 'contacts counts that match both sandboxes', async () => {
    const { hs, zo } = await summaries(request);
    const [inSync, excluded, failing] = [await count(page, 'in_sync'), await count(page, 'excluded'), await count(page, 'failing')];
    figures = `HubSpot ${hs.records.contacts.live} + Zoho ${zo.contacts.live} contacts; in sync ${inSync}, excluded ${excluded}, failing ${failing}`;
    return inSync > 0 && failing === 0 && hs.records.contacts.live + zo.contacts.live === 2 * inSync + excluded;
  }).catch((e) => { throw new Error(`${e.message}: ${figures}`); });

  // Grace's record: matched on her email, never created again on either side.
  await page.getByLabel('Name, HubSpot ID, app ID or Tandem ID').fill('Grace Hopper');
  await page.getByRole('button', { name: 'Search' }).click();
  const rows = page.locator('tbody tr', { hasText: 'Grace Hopper' });
  await expect(rows).toHaveCount(1);
  await rows.getByRole('link', { name: /Grace Hopper/ }).click();
  await hydrated(page);
  await expect(page.locator('#record-title .badge')).toHaveText('In sync');
  await expect(page.locator('tr[data-event="matched"]')).toContainText('Matched with the record that already existed in');
  await expect(page.locator('tr[data-event="created"]')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/zoho-contact-matched.png', fullPage: true });

  // Both Zoho syncs turned off: the files after this one see a quiet Zoho.
  await page.goto(appPage);
  await hydrated(page);
  for (const object of ['deal', 'contact']) {
    const line = page.locator(`.sync-line[data-object="${object}"]`);
    await line.getByRole('button', { name: 'Turn off' }).click();
    await expect(line).toContainText('Off');
  }
  expect(errors).toEqual([]);
});
