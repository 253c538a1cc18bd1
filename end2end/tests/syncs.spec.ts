import { test, expect, Page } from '@playwright/test';
import { authorizeOnSandbox, connectHubSpot, hydrated, joinAsViewer, signInAdmin, watchConsole } from './helpers';

// Setting up a deals sync between HubSpot (Sandbox) and Pipedrive (Sandbox): the stage grid with
// Auto-map, filters, conflicts, field mappings, validation and roles. Order matters.
test.describe.configure({ mode: 'serial' });

const appPage = '/settings/integrations/connected-apps/pipedrive';



/** HubSpot and Pipedrive connected, whatever earlier files left. */
async function connectBoth(page: Page) {
  await connectHubSpot(page);
  await page.goto(appPage);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Pipedrive (Sandbox)', level: 1 })).toBeVisible();
  if (await page.getByRole('region', { name: /Sandbox Sales Co Connected/ }).count() === 0) {
    await page.getByRole('button', { name: 'Install app' }).click();
    await authorizeOnSandbox(page, 'Pipedrive');
    await expect(page.getByRole('status')).toContainText('Pipedrive (Sandbox) is connected');
  }
}

test('set up a deals sync with Auto-map, a manual stage, two pipelines, a filter and the conflict rule', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await connectBoth(page);
  await page.getByRole('link', { name: 'Set up sync' }).click();
  await expect(page.getByRole('heading', { name: 'Set up sync with Pipedrive (Sandbox)' })).toBeVisible();
  await hydrated(page);

  // Choose an object.
  await expect(page.getByRole('heading', { name: 'Choose an object to sync' })).toBeVisible();
  await expect(page.getByRole('radio', { name: 'Deals', exact: true })).toBeChecked();
  await expect(page.getByRole('note').filter({ hasText: 'setting up contacts and companies first is recommended' })).toBeVisible();
  await page.getByRole('button', { name: 'Next' }).click();

  // Sync rules: direction, then the stage grid as Auto-map left it.
  await expect(page.getByRole('combobox', { name: 'Sync direction' })).toHaveValue('two_way');
  await expect(page.getByRole('heading', { name: 'No deduplication of deals' })).toBeVisible();
  const first = page.getByRole('group', { name: 'Pipeline pair 1' });
  await expect(first.getByLabel('Select a HubSpot pipeline')).toHaveValue('default');
  await expect(first.getByLabel('Pipedrive (Sandbox) pipeline')).toHaveValue('1');
  await expect(first.getByLabel('Appointment Scheduled')).toHaveValue('13');
  await expect(first.getByLabel('Qualified To Buy')).toHaveValue('11');
  await expect(first.getByLabel('Closed Won')).toHaveValue('won');
  await expect(first.getByLabel('Closed Lost')).toHaveValue('lost');
  await expect(first.getByText('Auto-mapped')).toHaveCount(4);
  await expect(first.locator('.field-warning')).toHaveCount(3);
  await expect(first.locator('.field-warning').first()).toHaveText(/^\d+ deals? in this stage will not sync\.$/);
  await expect(first.getByText(/Pipedrive \(Sandbox\) stages not mapped, whose deals will not sync to HubSpot: Contact Made \(\d+ deals?\)/)).toBeVisible();

  // One manual choice; Auto-map again leaves it alone.
  await first.getByLabel('Contract Sent').selectOption({ label: 'Proposal Made' });
  await first.getByRole('button', { name: 'Auto-map' }).click();
  await expect(first.getByLabel('Contract Sent')).toHaveValue('14');
  await expect(first.locator('.field-warning')).toHaveCount(2);

  // Another pipeline pair.
  await page.getByRole('button', { name: 'Map another pipeline' }).click();
  const second = page.getByRole('group', { name: 'Pipeline pair 2' });
  await expect(second.getByLabel('Select a HubSpot pipeline').locator('option:checked')).toHaveText('Partner Deals');
  await expect(second.getByLabel('Pipedrive (Sandbox) pipeline')).toHaveValue('2');
  await second.getByLabel('Intro Call').selectOption({ label: 'Renewal Due' });

  // A filter and the conflict rule.
  await page.getByRole('button', { name: 'Add filter' }).click();
  const filter = page.getByRole('group', { name: 'Filter 1' });
  await filter.getByLabel('Field', { exact: true }).selectOption({ label: 'Value' });
  await filter.getByLabel('Condition').selectOption({ label: 'is greater than' });
  await filter.getByLabel('Value', { exact: true }).fill('1000');
  await filter.getByLabel('Value', { exact: true }).blur();
  await page.getByLabel('When both change').selectOption({ label: 'Default to Pipedrive (Sandbox)' });
  await page.screenshot({ path: 'test-results/sync-rules.png', fullPage: true });
  await page.getByRole('button', { name: 'Next' }).click();

  // Field mappings: the defaults.
  await expect(page.getByRole('heading', { name: 'Field mappings' })).toBeVisible();
  await expect(page.getByLabel('HubSpot property of mapping 1')).toHaveValue('dealname');
  await expect(page.getByLabel('App field of mapping 1')).toHaveValue('title');
  // Associations: which links the sync keeps, and that contacts and companies do not sync yet.
  await expect(page.locator('.associations li')).toHaveText([
    'HubSpot deal ↔ its contact · Pipedrive (Sandbox) deal ↔ its person: created once contacts sync too (Sync more data)',
    'HubSpot deal ↔ its company · Pipedrive (Sandbox) deal ↔ its organization: created once companies sync too (Sync more data)',
  ]);
  await page.screenshot({ path: 'test-results/field-mappings.png', fullPage: true });
  // A mapping between two dropdowns, with its values.
  await page.getByRole('button', { name: 'Add mapping' }).click();
  const n = await page.locator('.field-table > tbody > tr:not(.values-row)').count();
  await page.getByLabel(`HubSpot property of mapping ${n}`).selectOption({ label: 'Deal Type' });
  await page.getByLabel(`App field of mapping ${n}`).selectOption({ label: 'Lead source (custom)' });
  await page.getByLabel('New Business').selectOption({ label: 'Website' });
  await page.getByRole('button', { name: 'Next' }).click();

  await expect(page.getByRole('heading', { name: 'Review' })).toBeVisible();
  await expect(page.getByText('Sales Pipeline ↔ Sales: 5 of 7 HubSpot stages mapped')).toBeVisible();
  await expect(page.getByText('Value is greater than 1000')).toBeVisible();
  await expect(page.getByText('Deal Type ↔ Lead source')).toBeVisible();
  await page.screenshot({ path: 'test-results/sync-review.png', fullPage: true });
  await page.getByRole('button', { name: 'Save and turn on' }).click();

  await expect(page).toHaveURL(/connected-apps\/pipedrive\?saved=deal&version=1$/);
  await expect(page.getByRole('status')).toHaveText('Deal sync saved as version 1 and turned on.');
  const line = page.locator('.sync-line[data-object="deal"]');
  await expect(line).toContainText('Syncing');
  await expect(line).toContainText('Version 1');
  await expect(page.getByRole('link', { name: 'Sync more data' })).toBeVisible();

  // Reload the settings: exactly what was saved.
  await line.getByRole('link', { name: 'Edit' }).click();
  await expect(page.getByRole('heading', { name: 'Edit the deal sync with Pipedrive (Sandbox)' })).toBeVisible();
  await hydrated(page);
  const again = page.getByRole('group', { name: 'Pipeline pair 1' });
  await expect(again.getByLabel('Contract Sent')).toHaveValue('14');
  await expect(again.getByLabel('Closed Won')).toHaveValue('won');
  await expect(page.getByRole('group', { name: 'Pipeline pair 2' }).getByLabel('Intro Call')).toHaveValue('21');
  await expect(page.getByRole('group', { name: 'Filter 1' }).getByLabel('Value', { exact: true })).toHaveValue('1000');
  await expect(page.getByLabel('When both change')).toHaveValue('app');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('New Business')).toHaveValue('101');
  expect(errors).toEqual([]);
});

test('a one-way sync locks the conflict rule to its source', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto(`${appPage}`);
  await page.locator('.sync-line[data-object="deal"]').getByRole('link', { name: 'Edit' }).click();
  await hydrated(page);
  await page.getByRole('combobox', { name: 'Sync direction' }).selectOption({ label: 'Only to HubSpot' });
  const rule = page.getByLabel('When both change');
  await expect(rule).toBeDisabled();
  await expect(rule).toHaveValue('app');
  await expect(page.locator('#conflict-note')).toHaveText('A one-way sync always follows the app the data flows from: Pipedrive (Sandbox).');
  await page.getByRole('combobox', { name: 'Sync direction' }).selectOption({ label: 'Only to Pipedrive (Sandbox)' });
  await expect(rule).toHaveValue('hubspot');
  await expect(page.locator('#conflict-note')).toContainText('follows the app the data flows from: HubSpot.');
  expect(errors).toEqual([]);
});

test('a new HubSpot pipeline for synced deals maps every stage', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto(appPage);
  await page.locator('.sync-line[data-object="deal"]').getByRole('link', { name: 'Edit' }).click();
  await hydrated(page);
  await expect(page.getByLabel('New HubSpot pipeline')).toHaveValue('Sales (from Pipedrive (Sandbox))');
  await page.getByRole('button', { name: 'Create a HubSpot pipeline for synced deals' }).click();
  await expect(page.getByText('Created the HubSpot pipeline Sales (from Pipedrive (Sandbox)) with the same stages')).toBeVisible();
  const first = page.getByRole('group', { name: 'Pipeline pair 1' });
  await expect(first.getByLabel('Select a HubSpot pipeline').locator('option:checked')).toHaveText('Sales (from Pipedrive (Sandbox))');
  await expect(first.getByText('Auto-mapped')).toHaveCount(7);
  await expect(first.locator('.field-warning')).toHaveCount(0);
  // Creating it twice is refused beside the name.
  await page.getByRole('button', { name: 'Create a HubSpot pipeline for synced deals' }).click();
  await expect(page.locator('[id="label-error"]')).toHaveText('HubSpot already has a pipeline called Sales (from Pipedrive (Sandbox)).');
  expect(errors).toEqual([]);
});

test('an invalid mapping is refused with its error beside the control', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto(appPage);
  await page.locator('.sync-line[data-object="deal"]').getByRole('link', { name: 'Edit' }).click();
  await hydrated(page);
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Add mapping' }).click();
  const n = await page.locator('.field-table > tbody > tr:not(.values-row)').count();
  await page.getByLabel(`HubSpot property of mapping ${n}`).selectOption({ label: 'Amount' });
  await page.getByLabel(`App field of mapping ${n}`).selectOption({ label: 'Title' });
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Save and turn on' }).click();

  // Back on the field mappings, the problem sits next to its control; nothing was saved.
  await expect(page.getByRole('heading', { name: 'Field mappings' })).toBeVisible();
  await expect(page.locator(`[id="fields.${n - 1}.direction-error"]`)).toHaveText(
    "Pipedrive (Sandbox)'s Title is a text field and cannot fill HubSpot's Amount, a number field.",
  );
  await page.screenshot({ path: 'test-results/sync-invalid.png', fullPage: true });
  await page.goto(appPage);
  await expect(page.locator('.sync-line[data-object="deal"]')).toContainText('Version 1');
  // 422 is the refusal the test expects.
  expect(errors).toEqual([]);
});

test('a Viewer sees the settings but cannot save them', async ({ page, browser }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  const { context, viewer: vera, errors: veraErrors } = await joinAsViewer(page, browser, 'vera@example.com', 'Vera Viewer');

  await vera.goto(appPage);
  await hydrated(vera);
  const line = vera.locator('.sync-line[data-object="deal"]');
  await expect(line.getByRole('button', { name: 'Pause' })).toBeDisabled();
  await line.getByRole('link', { name: 'View settings' }).click();
  await hydrated(vera);
  await expect(vera.getByRole('combobox', { name: 'Sync direction' })).toBeDisabled();
  await expect(vera.getByRole('group', { name: 'Pipeline pair 1' }).getByLabel('Contract Sent')).toBeDisabled();
  await vera.getByRole('button', { name: 'Next' }).click();
  await vera.getByRole('button', { name: 'Next' }).click();
  const save = vera.getByRole('button', { name: 'Save and turn on' });
  await expect(save).toBeDisabled();
  await expect(save).toHaveAttribute('title', 'You need the Super Admin or App Marketplace Access permission to change apps and syncs.');
  expect(veraErrors).toEqual([]);
  await context.close();
  expect(errors).toEqual([]);
});

test('Sync more data adds a contacts sync beside the deals sync', async ({ page }) => {
  const errors = watchConsole(page);
  await signInAdmin(page);
  await page.goto(appPage);
  await hydrated(page);
  await page.getByRole('link', { name: 'Sync more data' }).click();
  await expect(page.getByRole('heading', { name: 'Sync more data with Pipedrive (Sandbox)' })).toBeVisible();
  await hydrated(page);
  await expect(page.locator('label[for="object-deal"]')).toContainText('Already synced');
  await page.getByRole('radio', { name: 'Contacts', exact: true }).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/\/sync\?object=contact$/);
  await expect(page.getByRole('heading', { name: 'Map pipelines and deal stages' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('HubSpot property of mapping 3')).toHaveValue('email');
  await expect(page.getByLabel('App field of mapping 3')).toHaveValue('email');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Save and turn on' }).click();
  await expect(page.getByRole('status')).toHaveText('Contact sync saved as version 1 and turned on.');
  await expect(page.locator('.sync-line[data-object="contact"]')).toContainText('Syncing');
  await expect(page.locator('.sync-line[data-object="deal"]')).toContainText('Syncing');
  expect(errors).toEqual([]);
});
