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

/** The receipt's title, marked on a void one. */
export function receiptTitle(receipt: Receipt, i18n: I18n): string {
  const title = `${i18n.t.appName} — ${i18n.t.receiptTitle}`;
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
