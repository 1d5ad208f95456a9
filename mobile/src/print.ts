// Printing a page of HTML: on a phone, the system's print dialog (a printer on the network or
// over Bluetooth, or "Save as PDF"), through expo-print. The web build has its own (`print.web.ts`).
import * as Print from 'expo-print';

/** Opens the print dialog for `html`; throws when the phone cannot print or the print fails. */
export async function printHtml(html: string): Promise<void> {
  await Print.printAsync({ html });
}
