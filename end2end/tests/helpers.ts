import { Browser, expect, Page } from '@playwright/test';

export const admin = { name: 'Ada Admin', email: 'ada@example.com', password: 'correct horse battery' };

/** Collects console errors and uncaught exceptions; tests assert there are none. Chromium's own
 *  note of a 4xx answer is left out: refusing bad input with 4xx is what those tests check. */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    const text = message.text();
    const expectedRefusal = /^Failed to load resource: the server responded with a status of 4\d\d/.test(text);
    if (message.type() === 'error' && !expectedRefusal) errors.push(text);
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/** Waits until the WASM bundle has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export async function logIn(page: Page, email: string, password: string) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

export async function logOut(page: Page, name: string) {
  await page.getByLabel(`Account menu for ${name}`).click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
}

/** Logs in as the Super Admin, creating it first when this Tandem is brand new. */
export async function signInAdmin(page: Page) {
  await page.goto('/');
  if (page.url().endsWith('/setup')) {
    await hydrated(page);
    await page.getByLabel('Your name').fill(admin.name);
    await page.getByLabel('Work email').fill(admin.email);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Create Super Admin' }).click();
    await expect(page).toHaveURL(/\/hubspot\?welcome=1$/);
    await page.getByRole('link', { name: 'Skip for now' }).click();
  } else {
    await logIn(page, admin.email, admin.password);
  }
  await expect(page).toHaveURL(/\/settings\/integrations\/connected-apps$/);
}

/** Signs in on a sandbox's authorization pages and answers its consent page with `decision`, in
 *  the provider's words (HubSpot's and Pipedrive's Allow/Deny, Zoho's Accept/Reject). */
export async function authorizeOnSandbox(
  page: Page,
  provider: 'HubSpot' | 'Pipedrive' | 'Zoho CRM',
  decision: 'Allow' | 'Deny' | 'Accept' | 'Reject' = 'Allow',
) {
  await expect(page.getByRole('heading', { name: `Log in to ${provider} (Sandbox)` })).toBeVisible();
  await page.getByLabel('Password').fill('sandbox');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: `Allow access to your ${provider} account?` })).toBeVisible();
  await page.getByRole('button', { name: decision }).click();
}

/** The admin (on `page`) invites `email` as a Viewer; the new Viewer joins in a browser context of
 *  their own, which is returned with its page (the caller closes the context). */
export async function joinAsViewer(page: Page, browser: Browser, email: string, name: string) {
  await page.goto('/settings/users');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Permission', { exact: true }).selectOption({ label: 'Viewer' });
  await page.getByRole('button', { name: 'Invite user' }).click();
  const url = await page.getByLabel('Invitation link').inputValue();
  const context = await browser.newContext();
  const viewer = await context.newPage();
  const errors = watchConsole(viewer);
  await viewer.goto(url);
  await hydrated(viewer);
  await viewer.getByLabel('Your name').fill(name);
  await viewer.getByLabel('Password').fill('another good password');
  await viewer.getByRole('button', { name: 'Join Tandem' }).click();
  await expect(viewer).toHaveURL(/\/settings\/integrations\/connected-apps$/);
  return { context, viewer, errors };
}

/** Connects HubSpot (Sandbox) from Connected apps unless an earlier test already did. */
export async function connectHubSpot(page: Page) {
  await page.goto('/settings/integrations/connected-apps');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: /^(Connect HubSpot|HubSpot \(Sandbox\).*)$/ })).toBeVisible();
  if (await page.getByRole('button', { name: 'Connect HubSpot' }).count()) {
    await page.getByRole('button', { name: 'Connect HubSpot' }).click();
    await authorizeOnSandbox(page, 'HubSpot');
    await expect(page.getByRole('status')).toContainText('HubSpot (Sandbox) is connected');
  }
}

/** Reloads until `check` passes (the engine runs every few seconds). */
export async function eventually(page: Page, what: string, check: () => Promise<boolean>) {
  for (let i = 0; i < 60; i++) {
    if (await check()) return;
    await page.waitForTimeout(1_000);
    await page.reload();
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The big figure of a Sync health bucket (in_sync, excluded, failing). */
export async function bucketCount(page: Page, bucket: string): Promise<number> {
  const text = await page.locator(`[data-bucket="${bucket}"] .count-big`).innerText();
  return Number(text.replace(/,/g, ''));
}
