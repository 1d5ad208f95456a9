// A recharge's receipt as text, in the language it is made for (the farmer's): what the owner
// shares from the app (a message the farmer can keep), line by line.
import type { Receipt } from './api/types';
import type { I18n } from './i18n/I18n';

/** The receipt's lines: title, farmer, date, minutes, cash, who took it, the receipt's number. */
export function receiptLines(receipt: Receipt, i18n: I18n): [string, string][] {
  const { t } = i18n;
  return [
    [t.receiptFarmer, receipt.userName],
    [t.receiptWhen, i18n.dateTime(receipt.at)],
    [t.receiptMinutes, i18n.minutes(receipt.minutes)],
    [t.receiptCash, t.receiptTaka(i18n.num(receipt.cashTaka))],
    [t.receiptBy, receipt.recordedByName],
    [t.receiptNumber, receipt.number],
  ];
}

/** The whole receipt as one text to share. */
export function receiptText(receipt: Receipt, i18n: I18n): string {
  return [`${i18n.t.appName} — ${i18n.t.receiptTitle}`, ...receiptLines(receipt, i18n).map(([k, v]) => `${k}: ${v}`)].join('\n');
}
