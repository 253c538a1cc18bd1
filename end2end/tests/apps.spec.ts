import { test, expect } from '@playwright/test';
import { authorizeOnSandbox, hydrated, joinAsViewer, signInAdmin, watchConsole } from './helpers';

// Installing apps from the App Marketplace through the sandboxes' real sign-in and consent pages.
// One Tandem (and one pair of sandboxes) for the whole file: order matters.
test.describe.configure({ mode: 'serial' });



test('search the Marketplace, install Pipedrive with Allow, connect HubSpot', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await expect(page.getByRole('heading', { name: 'Connect HubSpot' })).toBeVisible();

  await page.getByRole('link', { name: 'Marketplace', exact: true }).click();
  await expect(page).toHaveURL(/\/marketplace$/);
  await expect(page.getByRole('heading', { name: 'App Marketplace', level: 1 })).toBeVisible();
  await hydrated(page);

  const search = page.getByLabel('Search apps');
  await search.fill('salesforce');
  await expect(page.getByRole('heading', { name: 'No apps match your search' })).toBeVisible();
  await search.fill('pipe');
  const card = page.getByRole('link', { name: 'Pipedrive (Sandbox)' });
  await expect(card).toBeVisible();
  await page.getByLabel('Category').selectOption('Sales');
  await expect(card).toBeVisible();
  await expect(page.getByText('Data Sync', { exact: true })).toBeVisible();
  await page.screenshot({ path: 'test-results/marketplace.png', fullPage: true });
  await card.click();

  await expect(page).toHaveURL(/\/marketplace\/pipedrive$/);
  await expect(page.getByRole('heading', { name: 'Pipedrive (Sandbox)', level: 1 })).toBeVisible();
  const shared = page.getByRole('region', { name: 'Shared data' });
  await expect(shared.getByRole('row', { name: /Deal Deal Two-way/ })).toBeVisible();
  await expect(shared.getByRole('row', { name: /Contact Person/ })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Permissions requested' }).getByText('deals:full')).toBeVisible();
  await expect(page.getByRole('region', { name: 'Requirements' })).toContainText('App Marketplace Access');
  await hydrated(page);
  await page.screenshot({ path: 'test-results/app-page.png', fullPage: true });

  await page.getByRole('button', { name: 'Install app' }).click();
  await expect(page).toHaveURL(/127\.0\.0\.1:\d+\/oauth\/authorize\?/);
  await authorizeOnSandbox(page, 'Pipedrive', 'Allow');

  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps\/pipedrive\?result=installed/);
  await expect(page.getByRole('status')).toHaveText('Pipedrive (Sandbox) is connected. Next, set up a sync.');
  const account = page.getByRole('region', { name: /Sandbox Sales Co/ });
  await expect(account.getByText('Connected', { exact: true })).toBeVisible();
  await expect(account.getByText('Ada Admin')).toBeVisible();
  await expect(account.getByText('7701234')).toBeVisible();
  await page.screenshot({ path: 'test-results/connected-app.png', fullPage: true });

  // HubSpot itself, from the Connected apps page.
  await page.getByRole('link', { name: 'Connected apps' }).first().click();
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps$/);
  await expect(page.getByRole('row', { name: /Pipedrive \(Sandbox\) Sandbox Sales Co/ })).toBeVisible();
  await hydrated(page);
  await page.getByRole('button', { name: 'Connect HubSpot' }).click();
  await authorizeOnSandbox(page, 'HubSpot', 'Allow');
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps\/hubspot\?result=installed/);
  await expect(page.getByRole('status')).toHaveText('HubSpot (Sandbox) is connected. Next, set up a sync.');

  await page.getByRole('link', { name: 'Connected apps' }).first().click();
  await expect(page.getByRole('heading', { name: /HubSpot \(Sandbox\)/ })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Connect HubSpot' })).toHaveCount(0);
  await page.screenshot({ path: 'test-results/connected-apps-installed.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('Deny on the consent page installs nothing and says so', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto('/settings/integrations/connected-apps/pipedrive');
  await hydrated(page);
  await expect(page.getByRole('region', { name: /Sandbox Sales Co/ })).toHaveCount(1);
  await page.getByRole('button', { name: 'Install another account' }).click();
  await authorizeOnSandbox(page, 'Pipedrive', 'Deny');
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps\/pipedrive\?result=denied$/);
  await expect(page.getByRole('alert')).toContainText('access was denied');
  await expect(page.getByRole('alert')).toContainText('Nothing was installed');
  await expect(page.getByRole('region', { name: /Sandbox Sales Co/ })).toHaveCount(1);
  expect(errors).toEqual([]);
});

test('a Viewer cannot install or uninstall, and sees why', async ({ page, browser }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  const { context, viewer: val, errors: valErrors } = await joinAsViewer(page, browser, 'val@example.com', 'Val Viewer');

  const reason = 'You need the Super Admin or App Marketplace Access permission to change apps and syncs.';
  await val.goto('/marketplace/pipedrive');
  await hydrated(val);
  const install = val.getByRole('button', { name: 'Install app' });
  await expect(install).toBeDisabled();
  await expect(install).toHaveAttribute('title', reason);
  await expect(val.getByRole('note')).toHaveText(reason);
  await val.screenshot({ path: 'test-results/viewer-app-page.png', fullPage: true });

  await val.goto('/settings/integrations/connected-apps/pipedrive');
  await hydrated(val);
  await expect(val.getByRole('button', { name: 'Reconnect' })).toBeDisabled();
  await expect(val.getByText('Uninstall', { exact: true })).toHaveCount(0);
  await expect(val.getByRole('link', { name: 'Audit log' })).toBeVisible();
  await val.getByRole('link', { name: 'Audit log' }).click();
  await expect(val.getByRole('alert')).toHaveText('Only a Super Admin can see the audit log.');
  expect(valErrors).toEqual([]);
  await context.close();
  expect(errors).toEqual([]);
});

test("an admin sets Tandem's share of an account's API limit", async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto('/settings/integrations/connected-apps/pipedrive');
  await hydrated(page);
  const budget = page.getByRole('region', { name: /Sandbox Sales Co/ }).getByRole('region', { name: 'API limit' });
  await expect(budget).toContainText('Calls today (UTC)');
  const share = budget.getByLabel("Tandem's share of the limit (%)");
  await expect(share).toHaveValue('80');
  await share.fill('0');
  await budget.getByRole('button', { name: 'Save' }).click();
  // The browser's own check stops 0 (min 1); nothing is saved.
  await expect(budget.getByRole('status')).toHaveCount(0);
  await share.fill('50');
  await budget.getByRole('button', { name: 'Save' }).click();
  await expect(budget.getByRole('status')).toHaveText('Saved: Tandem uses up to 50 % of the limit.');
  await page.screenshot({ path: 'test-results/api-limit.png', fullPage: true });
  await page.reload();
  await expect(page.getByRole('region', { name: 'API limit' }).first().getByLabel("Tandem's share of the limit (%)")).toHaveValue('50');
  expect(errors).toEqual([]);
});

test('Uninstall asks to confirm, revokes, and is in the audit log', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto('/settings/integrations/connected-apps/pipedrive');
  await hydrated(page);
  const account = page.getByRole('region', { name: /Sandbox Sales Co/ });
  await account.getByText('Uninstall', { exact: true }).click();
  await expect(account.getByText(/Tandem revokes its access and deletes its credentials/)).toBeVisible();
  await account.getByRole('button', { name: 'Uninstall app' }).click();
  await expect(page.getByRole('status')).toContainText('Pipedrive (Sandbox) was uninstalled and its access revoked');
  await expect(account.getByText('Uninstalled', { exact: true }).first()).toBeVisible();
  await expect(page.getByRole('button', { name: 'Install app' })).toBeEnabled();
  await page.screenshot({ path: 'test-results/uninstalled.png', fullPage: true });

  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page).toHaveURL(/\/settings\/audit-log$/);
  const rows = page.getByRole('row');
  await expect(rows.nth(1)).toContainText('Uninstalled Pipedrive (Sandbox) for Sandbox Sales Co (company 7701234)');
  await expect(rows.nth(1)).toContainText('Ada Admin (ada@example.com)');
  await expect(page.getByRole('cell', { name: /Installed HubSpot \(Sandbox\)/ })).toBeVisible();
  await expect(page.getByRole('cell', { name: /Installed Pipedrive \(Sandbox\)/ })).toBeVisible();
  await page.screenshot({ path: 'test-results/audit-log.png', fullPage: true });
  expect(errors).toEqual([]);
});
