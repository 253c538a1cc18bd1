import { expect, Page } from '@playwright/test';

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
