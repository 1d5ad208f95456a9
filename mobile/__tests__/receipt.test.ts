// A receipt as a page to print: what the owner typed stays text, and a void one says so.
import type { Receipt } from '../src/api/types';
import { makeI18n } from '../src/i18n/I18n';
import { receiptHtml } from '../src/receipt';

const receipt: Receipt = {
  id: 'r-1',
  number: '0A1B-2C3D-4E5F',
  userId: 'u-1',
  userName: `Rina <b>"Ali" & 'Co'</b>`,
  at: '2026-11-28T08:00:00Z',
  minutes: 300,
  cashTaka: 600,
  recordedByName: 'Rahim Uddin',
  void: null,
};

test('a farmer’s name is printed as the owner typed it, never read as markup', () => {
  const html = receiptHtml(receipt, makeI18n('en'));
  expect(html).toContain('<tr><th>Farmer</th><td>Rina &#60;b&#62;&#34;Ali&#34; &#38; &#39;Co&#39;&#60;/b&#62;</td></tr>');
  expect(html).not.toContain('<b>');
  expect(html).toContain('<html lang="en">');
  expect(html).toContain('<tr><th>Cash paid</th><td>600 taka</td></tr>');
});

test('a void receipt prints VOID under its title, and when and by whom it was voided', () => {
  const html = receiptHtml({ ...receipt, void: { at: '2026-11-28T08:01:00Z', byName: 'Rahim Uddin' } }, makeI18n('en'));
  expect(html).toContain('<title>PumpPilot — Receipt (VOID)</title>');
  expect(html).toMatch(/<\/h1><p class="void">VOID<\/p><table>/);
  expect(html).toMatch(/<tr><th>Voided<\/th><td>[^<]*Rahim Uddin[^<]*<\/td><\/tr>/);
});
