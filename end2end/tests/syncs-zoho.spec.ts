import { test, expect } from '@playwright/test';
import { authorizeOnSandbox, hydrated, signInAdmin, watchConsole } from './helpers';

// Zoho CRM, the second app, installed from the Marketplace through its sandbox's sign-in page and
// Zoho's own consent words (Accept, Reject). Runs after the other files: a second app installed
// here changes nothing they assert.
test.describe.configure({ mode: 'serial' });

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
