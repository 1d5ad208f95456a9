import { useState } from 'react';
import { Share, StyleSheet, Text, View } from 'react-native';

import type { Receipt } from '../api/types';
import { makeI18n, useI18n, type Language } from '../i18n/I18n';
import { printHtml } from '../print';
import { receiptHeading, receiptHtml, receiptLines, receiptText } from '../receipt';
import { Body, Button, Card, Choices, Message, Tag } from '../ui/components';
import { colors } from '../ui/theme';

/** expo-print's code for a print that was not completed (iOS: cancelled in the dialog). */
const PRINT_CANCELLED = 'ERR_PRINT_INCOMPLETE';

/**
 * The receipt of a recharge, shown after it or opened from the farmer's list: in the farmer's
 * language (chosen here, the app's by default), shared as a text message (the phone's share
 * sheet; on the web, the browser's) or printed (the phone's print dialog: a printer, or a PDF).
 * A void one is marked VOID, with when and by whom.
 */
export function ReceiptCard({ receipt, testID = 'receipt' }: { receipt: Receipt; testID?: string }) {
  const app = useI18n();
  const [lang, setLang] = useState<Language>(app.lang);
  const [note, setNote] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const i18n = makeI18n(lang);
  const share = async () => {
    try {
      // (On the web the browser's navigator.share resolves with nothing.)
      const result: { action?: string } | undefined = await Share.share({ message: receiptText(receipt, i18n), title: i18n.t.receiptTitle });
      if (result?.action !== Share.dismissedAction) setNote({ kind: 'success', text: app.t.receiptShared });
    } catch {
      setNote({ kind: 'error', text: app.t.shareUnavailable });
    }
  };
  const print = async () => {
    setNote(null);
    try {
      await printHtml(receiptHtml(receipt, i18n));
    } catch (err) {
      // iOS rejects a print the owner cancelled in its dialog too: nothing to say then.
      if ((err as { code?: string } | null)?.code === PRINT_CANCELLED) return;
      setNote({ kind: 'error', text: app.t.printUnavailable });
    }
  };
  return (
    <Card testID={testID}>
      <Text style={styles.title}>{receiptHeading(i18n)}</Text>
      {receipt.void ? <Tag tone="hold" word={i18n.t.receiptVoidMark} testID={`${testID}-void`} /> : null}
      {receiptLines(receipt, i18n).map(([label, value]) => (
        <View key={label} style={styles.line}>
          <Body muted>{label}</Body>
          <Body strong>{value}</Body>
        </View>
      ))}
      <Body muted>{app.t.receiptLanguage}</Body>
      <Choices
        testID={`${testID}-language`}
        value={lang}
        onChange={setLang}
        options={[
          { value: 'en', label: 'English' },
          { value: 'bn', label: 'বাংলা' },
        ]}
      />
      <Button testID={`${testID}-share`} kind="outline" label={app.t.shareReceipt} onPress={() => void share()} />
      <Button testID={`${testID}-print`} kind="outline" label={app.t.printReceipt} onPress={() => void print()} />
      {note ? <Message kind={note.kind} text={note.text} testID={`${testID}-${note.kind}`} /> : null}
    </Card>
  );
}

const styles = StyleSheet.create({
  title: { fontSize: 20, fontWeight: '800', color: colors.text },
  line: { flexDirection: 'row', justifyContent: 'space-between', gap: 10, flexWrap: 'wrap' },
});
