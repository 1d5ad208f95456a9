// A recharge's receipt as text, in the language it is made for (the farmer's): what the owner
// shares from the app (a message the farmer can keep), line by line.
import type { Receipt } from './api/types';
import type { I18n } from './i18n/I18n';

/**
 * The receipt's lines: farmer, date, minutes, cash, who took it, the receipt's number; on a void
 * one, when it was voided and by whom.
 */
export function receiptLines(receipt: Receipt, i18n: I18n): [string, string][] {
  const { t } = i18n;
  const lines: [string, string][] = [
    [t.receiptFarmer, receipt.userName],
    [t.receiptWhen, i18n.dateTime(receipt.at)],
    [t.receiptMinutes, i18n.minutes(receipt.minutes)],
    [t.receiptCash, t.receiptTaka(i18n.num(receipt.cashTaka))],
    [t.receiptBy, receipt.recordedByName],
    [t.receiptNumber, receipt.number],
  ];
  if (receipt.void) lines.push([t.receiptVoided, t.receiptVoidedBy(i18n.dateTime(receipt.void.at), receipt.void.byName)]);
  return lines;
}

/** A receipt's heading: "PumpPilot — Receipt". */
export function receiptHeading(i18n: I18n): string {
  return `${i18n.t.appName} — ${i18n.t.receiptTitle}`;
}

/** The receipt's title, marked on a void one. */
export function receiptTitle(receipt: Receipt, i18n: I18n): string {
  const title = receiptHeading(i18n);
  return receipt.void ? `${title} (${i18n.t.receiptVoidMark})` : title;
}

/** The whole receipt as one text to share. */
export function receiptText(receipt: Receipt, i18n: I18n): string {
  return [receiptTitle(receipt, i18n), ...receiptLines(receipt, i18n).map(([k, v]) => `${k}: ${v}`)].join('\n');
}

/** The cash a receipt counts for in a sum: what it says, or nothing once void. */
export function cashCounted(receipt: Receipt): number {
  return receipt.void ? 0 : receipt.cashTaka;
}

/**
 * The receipt as a page to print, in its language: the title, VOID on a void one, and the lines,
 * sized for a receipt printer's 80 mm roll and left at the top of a sheet on any other. Every
 * value is escaped (a farmer's name is what the owner typed).
 */
export function receiptHtml(receipt: Receipt, i18n: I18n): string {
  const rows = receiptLines(receipt, i18n)
    .map(([label, value]) => `<tr><th>${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`)
    .join('');
  const mark = receipt.void ? `<p class="void">${escapeHtml(i18n.t.receiptVoidMark)}</p>` : '';
  return `<!doctype html><html lang="${i18n.lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(receiptTitle(receipt, i18n))}</title>
<style>
@page { margin: 6mm; }
body { font-family: sans-serif; color: #000; margin: 0; }
main { max-width: 72mm; }
h1 { font-size: 16pt; margin: 0 0 3mm; }
.void { display: inline-block; border: 2px solid #000; padding: 1mm 3mm; font-weight: bold; font-size: 14pt; margin: 0 0 3mm; }
table { border-collapse: collapse; width: 100%; font-size: 11pt; }
th { text-align: left; font-weight: normal; padding: 1mm 3mm 1mm 0; vertical-align: top; }
td { text-align: right; font-weight: bold; padding: 1mm 0; }
</style></head><body><main><h1>${escapeHtml(receiptHeading(i18n))}</h1>${mark}<table>${rows}</table></main></body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
