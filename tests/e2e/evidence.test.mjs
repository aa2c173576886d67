// Evidence in the browser: rita marks a task and attaches a photo from the
// camera input (a file chooser on a desktop); the learner's phone shows the
// photo with her result. On a phone rita attaches a PDF for leo, whose
// desktop shows it as a file; a text file named like a photo is refused and
// the mark keeps what it had.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { browserWorld, logIn, startHandHygiene, PHONE, DESKTOP, SHOTS } from './browser.mjs';

const PHOTO = readFileSync('tests/fixtures/evidence-photo.jpg');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

const w = browserWorld();
const as = w.as;

const T = 20000; // generous waits: the machine may be busy with other tests

// true when the image in `loc` has been drawn (it loaded and is not empty)
const drawn = (loc) => loc.evaluate((img) => img.complete && img.naturalWidth > 0);

test('rita attaches a photo to a mark on her desktop; lea sees it on her phone', async () => {
  const rita = await as('rita', DESKTOP);
  const lea = await as('lea', PHONE);
  await startHandHygiene(rita, lea, 'Lea Johansen');

  // no photo before there is a mark to attach it to
  const cell = rita.page.locator('tbody tr').filter({ hasText: 'Lea Johansen' }).locator('[data-cell$=":1"]');
  assert.equal(await cell.locator('input[type=file]').count(), 0);
  await rita.page.getByRole('button', { name: 'Pass: Lea Johansen, task 2' }).click();
  await cell.locator('[data-mark="pass"]').waitFor({ timeout: T }).catch(() => {});
  const camera = rita.page.getByLabel('Take a photo for Lea Johansen, task 2');
  await camera.waitFor({ state: 'attached', timeout: T });
  assert.equal(await camera.getAttribute('accept'), 'image/*');
  assert.notEqual(await camera.getAttribute('capture'), null, 'a phone opens its camera');
  await camera.setInputFiles({ name: 'IMG_2041.jpg', mimeType: 'image/jpeg', buffer: PHOTO });

  const ritaThumb = cell.locator('img.evidence-thumb');
  await ritaThumb.waitFor({ timeout: T });
  await rita.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await ritaThumb.elementHandle(), { timeout: T });
  assert.ok(await drawn(ritaThumb));
  assert.equal(await cell.getAttribute('data-mark'), 'pass', 'the mark keeps its result');

  // rita moves the room to that task: lea's phone shows her result with the photo
  await rita.page.getByRole('button', { name: 'Next task →' }).click();
  const leaThumb = lea.page.locator('.answer-state img.evidence-thumb');
  await leaThumb.waitFor({ timeout: T });
  await lea.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await leaThumb.elementHandle(), { timeout: T });
  assert.equal(await leaThumb.getAttribute('alt'), 'Evidence your responsible attached to task 2');
  assert.equal(await lea.page.locator('.mylist img.evidence-thumb').count(), 1, 'and in her list of results');

  mkdirSync(SHOTS, { recursive: true });
  await lea.page.screenshot({ path: path.join(SHOTS, 'evidence-mark-phone.png') });
  await rita.page.screenshot({ path: path.join(SHOTS, 'evidence-mark-desktop.png') });

  // a note edited afterwards keeps the photo
  await rita.page.getByRole('button', { name: 'Note for Lea Johansen, task 2' }).click();
  await rita.page.getByRole('textbox', { name: 'Note' }).fill('Good lather, wrists too.');
  await rita.page.getByRole('button', { name: 'Save note' }).click();
  await cell.locator('.cell-note', { hasText: 'Good lather' }).waitFor({ timeout: T });
  assert.equal(await cell.locator('img.evidence-thumb').count(), 1);
  await lea.page.locator('.answer-state .cell-note', { hasText: 'Good lather' }).waitFor({ timeout: T });
  assert.equal(await lea.page.locator('.answer-state img.evidence-thumb').count(), 1);
  assert.deepEqual([...rita.errors, ...lea.errors], []);
});

test('on her phone rita attaches a PDF for leo; a text file named like a photo is refused', async () => {
  const rita = await as('rita', PHONE);
  const leo = await as('leo', DESKTOP);
  await startHandHygiene(rita, leo, 'Leo Nilsen');
  const cell = rita.page.locator('tbody tr').filter({ hasText: 'Leo Nilsen' }).locator('[data-cell$=":2"]');
  await rita.page.getByRole('button', { name: 'Fail: Leo Nilsen, task 3' }).click();
  const file = rita.page.getByLabel('Attach a file for Leo Nilsen, task 3');
  await file.waitFor({ state: 'attached', timeout: T });

  await file.setInputFiles({ name: 'photo.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('this is not a photo') });
  await rita.page.locator('.toast-error', { hasText: 'Only photos (JPEG or PNG) and PDF files can be attached.' }).waitFor({ timeout: T });
  assert.equal(await cell.locator('.evidence').count(), 0, 'nothing is attached');
  assert.equal(await cell.getAttribute('data-mark'), 'fail', 'the mark is unchanged');

  await file.setInputFiles({ name: 'checklist.pdf', mimeType: 'application/pdf', buffer: PDF });
  await cell.locator('.evidence-file', { hasText: 'Attached file' }).waitFor({ timeout: T });
  const leoList = leo.page.locator('.mylist .evidence');
  await leoList.waitFor({ timeout: T });
  await leo.page.locator('.mylist .evidence-file', { hasText: 'Attached file' }).waitFor({ timeout: T });
  const href = await leoList.getAttribute('href');
  const r = await leo.page.request.get(w.srv.base + href);
  assert.equal(r.status(), 200);
  assert.equal(r.headers()['content-type'], 'application/pdf');
  assert.match(r.headers()['content-disposition'], /^attachment;/);
  // lea's session (from the first test) may not fetch leo's file
  const other = await as('lea', PHONE);
  await logIn(other, '/#/learn');
  assert.equal((await other.page.request.get(w.srv.base + href)).status(), 404);
  assert.deepEqual([...rita.errors.filter((e) => !/status of 415/.test(e)), ...leo.errors], []);
});
