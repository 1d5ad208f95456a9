import { useState } from 'react';
import { StyleSheet, Text, View } from 'react-native';

import type { Receipt } from '../../api/types';
import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useLive } from '../../live/LiveProvider';
import { Body, Button, Card, ErrorBox, Heading, Loading, Screen } from '../../ui/components';
import { colors } from '../../ui/theme';
import { useResource } from '../../ui/useResource';
import { ReceiptCard } from '../ReceiptCard';

export function WalletScreen() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const live = useLive();
  const me = live.status?.me;
  // The ledger gains a line when minutes are added or taken (the balance moves) and when a run
  // ends. During the farmer's own run the balance moves every second without a line, so the
  // ledger (up to 500 lines) is read again when the run ends, not with every status; the balance
  // shown is the status's, fresh every few seconds.
  const run = me?.entry?.status === 'RUNNING' || me?.entry?.status === 'HOLD' ? me.entry.id : null;
  const wallet = useResource(api.wallet, run ? `run ${run}` : me?.availableSeconds);
  const data = wallet.data;
  // The receipt opened from a ledger line (the farmer's copy: a paper lost, or the cash to show;
  // a recharge's, or the void one a correction names), under that line, or why it could not be
  // read. A line is named by its kind and time (`lineKey`): the ledger may gain lines above it
  // meanwhile.
  const [opened, setOpened] = useState<{ line: string; receipt?: Receipt; error?: unknown } | null>(null);
  const [opening, setOpening] = useState<string | null>(null);
  const toggleReceipt = async (line: string, id: string) => {
    if (opened?.line === line && opened.receipt) {
      setOpened(null);
      return;
    }
    setOpening(line);
    try {
      setOpened({ line, receipt: await api.ownReceipt(id) });
    } catch (error) {
      setOpened({ line, error });
    } finally {
      setOpening(null);
    }
  };
  return (
    <Screen title={t.walletTitle} testID="wallet" onRefresh={wallet.reload}>
      {wallet.error ? <ErrorBox error={wallet.error} onRetry={wallet.reload} /> : null}
      {!data && wallet.loading ? <Loading /> : null}
      {data ? (
        <>
          <Card testID="wallet-balance">
            <Body muted>{t.yourBalance}</Body>
            <Text style={styles.balance} testID="wallet-balance-value">
              {i18n.duration(me?.availableSeconds ?? data.availableSeconds)}
            </Text>
          </Card>
          <Heading>{t.ledger}</Heading>
          {data.ledger.length === 0 ? <Body muted>{t.noLedger}</Body> : null}
          {data.ledger.map((line, i) => (
            <Card key={`${line.at}-${i}`} testID={`ledger-${i}`}>
              <View style={styles.row}>
                <Text style={styles.kind}>{t.ledgerKinds[line.kind] ?? line.kind}</Text>
                <Text style={[styles.delta, { color: line.deltaSeconds < 0 ? colors.danger : colors.primary }]}>
                  {line.deltaSeconds < 0 ? '' : '+'}
                  {i18n.duration(line.deltaSeconds)}
                </Text>
              </View>
              <Body muted>{i18n.dateTime(line.at)}</Body>
              <Body>{t.balanceAfter(i18n.duration(line.balanceAfter))}</Body>
              {line.note ? <Body muted>{line.note}</Body> : null}
              {line.receiptNumber ? (
                <Body muted testID={`ledger-${i}-receipt`}>
                  {t.receiptNumber} {line.receiptNumber}
                </Body>
              ) : null}
              {line.receiptId ? (
                <LineReceipt
                  testID={`ledger-${i}`}
                  opened={opened?.line === lineKey(line) ? opened : null}
                  busy={opening === lineKey(line)}
                  onToggle={() => void toggleReceipt(lineKey(line), line.receiptId!)}
                />
              ) : null}
            </Card>
          ))}
        </>
      ) : null}
    </Screen>
  );
}

/** A ledger line's name that stays when lines are added above it. */
const lineKey = (line: { kind: string; at: string }) => `${line.kind} ${line.at}`;

/** A ledger line's receipt: the button that shows or hides it, and the receipt (or why not). */
function LineReceipt({
  testID,
  opened,
  busy,
  onToggle,
}: {
  testID: string;
  opened: { receipt?: Receipt; error?: unknown } | null;
  busy: boolean;
  onToggle: () => void;
}) {
  const { t } = useI18n();
  const shown = !!opened?.receipt;
  return (
    <>
      <Button testID={`${testID}-open-receipt`} kind="outline" label={shown ? t.hideReceipt : t.showReceipt} expanded={shown} busy={busy} onPress={onToggle} />
      {opened?.error ? <ErrorBox error={opened.error} testID={`${testID}-receipt-error`} /> : null}
      {opened?.receipt ? <ReceiptCard key={opened.receipt.id} receipt={opened.receipt} testID={`${testID}-receipt-card`} /> : null}
    </>
  );
}

const styles = StyleSheet.create({
  balance: { fontSize: 36, fontWeight: '900', color: colors.text },
  row: { flexDirection: 'row', justifyContent: 'space-between', alignItems: 'center', gap: 8, flexWrap: 'wrap' },
  kind: { fontSize: 20, fontWeight: '800', color: colors.text },
  delta: { fontSize: 22, fontWeight: '900' },
});
