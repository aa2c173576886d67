// The pages that need only HTTP, in real Chromium against a real otjd:
// login (and back to where the person was going), the learner home with
// module states, the OTJ pop-up naming the responsibles, an ordinary module
// taken and completed, completions with the CSV download, and the admin
// pages (module maker with the OTJ switch, permissions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserWorld, logIn, shoot, DESKTOP } from './browser.mjs';

const w = browserWorld({ checkErrors: true });
const as = w.as;

test('the login page returns a person to the join link they opened', async () => {
  const lea = await as('lea');
  await lea.page.goto(`${w.srv.base}/join/ABC123`); // a join link, as a QR code holds it
  await lea.page.getByRole('heading', { name: 'Log in' }).waitFor();
  assert.match(lea.page.url(), /#\/login\?next=%2Fjoin%2FABC123/);
  await shoot(lea.page, 'login');
  await lea.page.getByLabel('Login', { exact: true }).fill('lea');
  await lea.page.getByLabel('Password').fill('wrong-password');
  await lea.page.getByRole('button', { name: 'Log in' }).click();
  await lea.page.getByRole('alert').filter({ hasText: 'Wrong login or password' }).waitFor();
  await lea.page.getByLabel('Password').fill('otj-demo');
  await lea.page.getByRole('button', { name: 'Log in' }).click();
  await lea.page.waitForURL(/#\/join\/ABC123$/);
  await lea.context.close();
});

test('lea sees her path: Food safety basics completed, Hand hygiene is OTJ, Allergen handling locked', async () => {
  const lea = await as('lea');
  await logIn(lea, '/#/learn');
  const mods = lea.page.locator('.module');
  await mods.first().waitFor();
  assert.equal(await lea.page.locator('.module[data-module="Food safety basics"]').getAttribute('data-state'), 'completed');
  assert.equal(await lea.page.locator('.module[data-module="Hand hygiene"]').getAttribute('data-state'), 'otj');
  assert.equal(await lea.page.locator('.module[data-module="Allergen handling"]').getAttribute('data-state'), 'locked');
  // states are told in words, not by colour alone
  await lea.page.locator('.module[data-module="Allergen handling"]').getByText('Locked').waitFor();
  await shoot(lea.page, 'learner-home');
});

test('the OTJ pop-up names the responsibles within reach (rita), and is a keyboard-usable dialog', async () => {
  const leo = await as('leo');
  await logIn(leo, '/#/learn');
  await leo.page.locator('.module[data-module="Hand hygiene"]').getByRole('button', { name: 'Open' }).click();
  const dlg = leo.page.getByRole('dialog', { name: 'Reach out to a responsible' });
  await dlg.waitFor();
  await dlg.getByText('Rita Hansen').waitFor();
  assert.equal(await dlg.getByText('Mark Olsen').count(), 0, 'Management without Facilitate OTJ is not a responsible');
  assert.equal(await dlg.getByText('Sam Berg').count(), 0, 'a responsible of another branch does not reach leo');
  await shoot(leo.page, 'otj-popup');
  await leo.page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
});

test('liv sees Hand hygiene locked and can take Food safety basics herself', async () => {
  const liv = await as('liv');
  await logIn(liv, '/#/learn');
  await liv.page.locator('.module').first().waitFor();
  assert.equal(await liv.page.locator('.module[data-module="Hand hygiene"]').getAttribute('data-state'), 'locked');
  assert.equal(await liv.page.locator('.module[data-module="Food safety basics"]').getAttribute('data-state'), 'available');
  await liv.page.getByRole('link', { name: 'Start Food safety basics' }).click();
  await liv.page.getByRole('heading', { name: 'Food safety basics' }).waitFor();
  await liv.page.getByRole('button', { name: /4 °C/ }).click();
  await liv.page.getByRole('button', { name: /Bottom shelf/ }).click();
  await liv.page.getByRole('button', { name: /6 hours/ }).click(); // wrong on purpose
  await liv.page.getByRole('button', { name: 'Complete module' }).click();
  await liv.page.getByText('Not right yet').waitFor();
  await liv.page.getByRole('button', { name: /2 hours/ }).click();
  await liv.page.getByRole('button', { name: 'Complete module' }).click();
  await liv.page.getByRole('heading', { name: 'Module completed' }).waitFor();
  await liv.page.getByRole('link', { name: 'Continue' }).click();
  await liv.page.locator('.module[data-module="Hand hygiene"][data-state="otj"]').waitFor();
});

test('completions: the admin sees every completion and downloads the CSV', async () => {
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/completions');
  await admin.page.getByRole('heading', { name: 'Completions' }).waitFor();
  await admin.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' }).first().waitFor();
  const [download] = await Promise.all([
    admin.page.waitForEvent('download'),
    admin.page.getByRole('link', { name: /Download CSV/ }).click(),
  ]);
  const file = await download.path();
  const { readFileSync } = await import('node:fs');
  const csv = readFileSync(file, 'utf8');
  assert.match(csv.split(/\r?\n/)[0], /login/);
  assert.match(csv, /lea/);
  await shoot(admin.page, 'completions');
});

test('module maker: OTJ is switched off and explained for a non-quiz module; a new OTJ quiz is made', async () => {
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/modules');
  await admin.page.getByRole('link', { name: /Welcome video/ }).click();
  const toggle = admin.page.getByLabel('On-the-Job training (OTJ)');
  await toggle.waitFor();
  assert.equal(await toggle.isDisabled(), true);
  await admin.page.getByText('Only quiz modules can be On-the-Job training').waitFor();

  await admin.page.getByRole('link', { name: /Hand hygiene/ }).click();
  await admin.page.getByRole('heading', { name: /Module maker: Hand hygiene/ }).waitFor();
  assert.equal(await admin.page.getByLabel('On-the-Job training (OTJ)').isChecked(), true);
  await shoot(admin.page, 'admin-module-maker');

  await admin.page.getByRole('link', { name: '+ New module' }).click();
  await admin.page.getByRole('heading', { name: 'New module' }).waitFor();
  await admin.page.getByLabel('Title').fill('Fire blanket');
  await admin.page.getByRole('button', { name: '+ Question' }).click();
  await admin.page.getByLabel('Question', { exact: true }).fill('Where is the fire blanket?');
  await admin.page.getByLabel('Options, one per line').fill('By the stove\nIn the office');
  await admin.page.getByLabel('Right answer').selectOption({ label: 'By the stove' });
  await admin.page.getByRole('button', { name: '+ Observe task' }).click();
  await admin.page.getByLabel('What the responsible watches for').fill('Pulls the tapes and covers the pan');
  await admin.page.getByLabel('On-the-Job training (OTJ)').check();
  await admin.page.getByRole('button', { name: 'Create module' }).click();
  await admin.page.getByRole('heading', { name: /Module maker: Fire blanket/ }).waitFor();
  await admin.page.getByRole('link', { name: /Fire blanket/ }).getByText('OTJ').waitFor();
  const list = await admin.page.evaluate(async () => (await (await fetch('/api/admin/modules')).json()));
  const made = (list.items || list).find((m) => m.title === 'Fire blanket');
  assert.equal(made.otj, true);
  assert.deepEqual(made.tasks.map((t) => t.kind), ['question', 'observe']);
});

test('permissions: Facilitate OTJ needs Management; granting it makes mark a responsible', async () => {
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/permissions');
  const row = admin.page.locator('tr[data-login="mark"]');
  await row.waitFor();
  const fac = row.getByLabel(/Facilitate On-the-Job training/);
  assert.equal(await row.getByLabel(/Management/).isChecked(), true);
  assert.equal(await fac.isChecked(), false);
  await shoot(admin.page, 'admin-permissions');
  await fac.check();
  await admin.page.locator('tr[data-login="mark"]').getByText('Responsible').waitFor();
  const me = await admin.page.evaluate(async () => (await (await fetch('/api/admin/users')).json()));
  assert.equal((me.items || me).find((u) => u.login === 'mark').facilitate_otj, true);
  // and back, by keyboard
  const fac2 = admin.page.locator('tr[data-login="mark"]').getByLabel(/Facilitate On-the-Job training/);
  await fac2.focus();
  await admin.page.keyboard.press('Space');
  await admin.page.waitForFunction(async () => {
    const r = await (await fetch('/api/admin/users')).json();
    return !(r.items || r).find((u) => u.login === 'mark').facilitate_otj;
  });
  // the management box of a user without it leaves Facilitate OTJ disabled
  const lea = admin.page.locator('tr[data-login="lea"]');
  assert.equal(await lea.getByLabel(/Facilitate On-the-Job training/).isDisabled(), true);
});

test('admin: paths, sharings and departments show the demo organisation', async () => {
  const admin = await as('admin', DESKTOP);
  await logIn(admin, '/#/admin/paths');
  await admin.page.getByRole('link', { name: /Kitchen starter/ }).click();
  const ol = admin.page.getByRole('list', { name: 'Modules in order' });
  await ol.getByText('Hand hygiene').waitFor();
  assert.deepEqual((await ol.locator('li span').allTextContents()), ['Food safety basics', 'Hand hygiene', 'Allergen handling']);
  await shoot(admin.page, 'admin-paths', { both: false });
  await admin.page.getByRole('link', { name: 'Sharings' }).click();
  await admin.page.locator('tbody tr').filter({ hasText: 'Kitchen starter' }).getByText('Kitchen').first().waitFor();
  await shoot(admin.page, 'admin-sharings', { both: false });
  await admin.page.getByRole('link', { name: 'Departments' }).click();
  await admin.page.locator('.tree').getByText('Cold kitchen').waitFor();
  await shoot(admin.page, 'admin-departments', { both: false });
});
