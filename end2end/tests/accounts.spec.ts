import { test, expect } from '@playwright/test';
import { admin, hydrated, logIn, logOut, watchConsole } from './helpers';

// One Tandem for the whole file, starting from an empty database: order matters.
test.describe.configure({ mode: 'serial' });

test('first run creates the Super Admin', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await expect(page).toHaveURL(/\/setup$/);
  // Server-rendered: the form is there before any script runs.
  await expect(page.getByRole('heading', { name: 'Welcome to Tandem' })).toBeVisible();
  await hydrated(page);

  // The server checks what the browser cannot: a name of blanks is no name.
  await page.getByLabel('Your name').fill('   ');
  await page.getByLabel('Work email').fill(admin.email);
  await page.getByLabel('Password').fill(admin.password);
  await page.getByRole('button', { name: 'Create Super Admin' }).click();
  await expect(page.locator('#name-error')).toHaveText('Enter a name.');

  await page.getByLabel('Your name').fill(admin.name);
  await page.getByRole('button', { name: 'Create Super Admin' }).click();
  // HubSpot first: the new Super Admin is asked for the HubSpot account, and may skip it.
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps\/hubspot\?welcome=1$/);
  await expect(page.getByRole('heading', { name: 'Start with your HubSpot account' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Connect HubSpot' })).toBeVisible();
  await page.screenshot({ path: 'test-results/welcome.png', fullPage: true });
  await page.getByRole('link', { name: 'Skip for now' }).click();
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps$/);
  await expect(page.getByRole('heading', { name: 'Connected apps', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'No apps connected yet' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Marketplace', exact: true })).toBeVisible();
  await page.screenshot({ path: 'test-results/connected-apps.png', fullPage: true });

  // The first-run page is gone for good.
  await page.goto('/setup');
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps$/);
  expect(errors).toEqual([]);
});

test('log out, a wrong password is refused, the right one logs in', async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps$/);
  await logOut(page, admin.name);

  await hydrated(page);
  await page.getByLabel('Email').fill(admin.email);
  await page.getByLabel('Password').fill('not my password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText("That email and password don't match an account.");
  await expect(page).toHaveURL(/\/login$/);
  await page.screenshot({ path: 'test-results/login-error.png', fullPage: true });

  await page.getByLabel('Password').fill(admin.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps$/);

  // Signed out, pages send you to log in and back where you were going.
  await logOut(page, admin.name);
  await page.goto('/settings/users');
  await expect(page).toHaveURL(/\/login\?next=\/settings\/users$/);
  await hydrated(page);
  await page.getByLabel('Email').fill(admin.email);
  await page.getByLabel('Password').fill(admin.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/settings\/users$/);
  expect(errors).toEqual([]);
});

test('a Viewer sees the console with disabled controls and the reason', async ({ page, browser }) => {
  const errors = watchConsole(page);
  await logIn(page, admin.email, admin.password);
  await page.getByRole('link', { name: 'Users & permissions' }).click();
  await expect(page.getByRole('heading', { name: 'Users & permissions', level: 1 })).toBeVisible();

  await page.getByLabel('Email').fill('vic@example.com');
  await page.getByLabel('Permission', { exact: true }).selectOption({ label: 'Viewer' });
  await page.getByRole('button', { name: 'Invite user' }).click();
  const link = page.getByLabel('Invitation link');
  await expect(link).toBeVisible();
  const url = await link.inputValue();
  expect(url).toMatch(/\/invite\/[A-Za-z0-9_-]{43}$/);
  const vicRow = page.getByRole('row', { name: /vic@example\.com/ });
  await expect(vicRow.getByText('Invited')).toBeVisible();

  // Vic accepts in a browser of their own.
  const vicContext = await browser.newContext();
  const vic = await vicContext.newPage();
  const vicErrors = watchConsole(vic);
  await vic.goto(url);
  await expect(vic.getByRole('heading', { name: 'Join Tandem' })).toBeVisible();
  await expect(vic.getByText('as vic@example.com with Viewer permission')).toBeVisible();
  await hydrated(vic);
  await vic.getByLabel('Your name').fill('Vic Viewer');
  await vic.getByLabel('Password').fill('another good password');
  await vic.getByRole('button', { name: 'Join Tandem' }).click();
  await expect(vic).toHaveURL(/\/settings\/integrations\/connected-apps$/);

  await vic.getByRole('link', { name: 'Users & permissions' }).click();
  await expect(vic.getByRole('note')).toHaveText('Only a Super Admin can invite users or change permissions.');
  const invite = vic.getByRole('button', { name: 'Invite user' });
  await expect(invite).toBeDisabled();
  await expect(invite).toHaveAttribute('title', 'Only a Super Admin can invite users or change permissions.');
  await expect(vic.getByLabel('Permission for ada@example.com')).toBeDisabled();
  await expect(vic.getByLabel('Permission for vic@example.com')).toBeDisabled();
  await expect(vic.getByText('Remove', { exact: true })).toHaveCount(0);
  await vic.screenshot({ path: 'test-results/viewer-users.png', fullPage: true });

  await logOut(vic, 'Vic Viewer');
  expect(vicErrors).toEqual([]);
  await vicContext.close();

  // Back to the admin: Vic is active now.
  await page.reload();
  await expect(page.getByRole('row', { name: /vic@example\.com/ }).getByText('Active')).toBeVisible();
  expect(errors).toEqual([]);
});
