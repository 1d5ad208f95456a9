import { useState } from 'react';
import { View } from 'react-native';

import type { MinuteRequest } from '../../api/types';
import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { Body, Button, Card, ErrorBox, Loading, Message, Screen } from '../../ui/components';
import { useConfirm } from '../../ui/useConfirm';
import { useResource } from '../../ui/useResource';
import { AdminOnly } from './AdminOnly';

const APPROVE_ASKS_ABOVE_MINUTES = 120;

export function RequestsScreen() {
  return (
    <AdminOnly>
      <Requests />
    </AdminOnly>
  );
}

function Requests() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  // Requests carry a user id only; the farmers' list gives the names.
  const data = useResource(async () => {
    const [requests, users] = await Promise.all([api.minuteRequests('PENDING'), api.users()]);
    return {
      requests,
      names: new Map(users.map((u) => [u.id, u.name])),
      balances: new Map(users.map((u) => [u.id, u.availableSeconds])),
    };
  });
  const [busy, setBusy] = useState<string | null>(null);
  // A request above this asks for a second tap (by request id): a mistyped request is money
  // given away.
  const confirm = useConfirm();
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);

  const decide = async (r: MinuteRequest, how: 'approve' | 'reject') => {
    const name = data.data?.names.get(r.userId) ?? t.unknownUser;
    if (how === 'approve' && r.minutes > APPROVE_ASKS_ABOVE_MINUTES && !confirm.tap(r.id)) return;
    confirm.disarm();
    setBusy(r.id);
    try {
      if (how === 'approve') {
        await api.approve(r.id);
        setMessage({ kind: 'success', text: t.approved(name, i18n.minutes(r.minutes)) });
      } else {
        await api.reject(r.id);
        setMessage({ kind: 'success', text: t.rejected(name) });
      }
    } catch (err) {
      setMessage({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
      void data.reload();
    }
  };

  return (
    <Screen title={t.requestsTitle} testID="requests" onRefresh={data.reload}>
      {message ? <Message kind={message.kind} text={message.text} testID={`requests-${message.kind}`} /> : null}
      {data.error ? <ErrorBox error={data.error} onRetry={data.reload} /> : null}
      {!data.data && data.loading ? <Loading /> : null}
      {data.data?.requests.length === 0 ? <Body muted>{t.noPending}</Body> : null}
      {data.data?.requests.map((r) => {
        const name = data.data?.names.get(r.userId) ?? t.unknownUser;
        const armed = confirm.isArmed(r.id);
        return (
          <Card key={r.id} testID={`request-${r.id}`}>
            <Body strong>{name}</Body>
            <Body strong>{i18n.minutes(r.minutes)}</Body>
            <Body testID={`request-${r.id}-balance`}>
              {t.balanceNowAfter(
                i18n.duration(data.data?.balances.get(r.userId) ?? 0),
                i18n.duration((data.data?.balances.get(r.userId) ?? 0) + r.minutes * 60),
              )}
            </Body>
            {r.note ? <Body>{r.note}</Body> : null}
            <Body muted>{i18n.dateTime(r.createdAt)}</Body>
            {/* Armed, the approve button names the minutes and the farmer: it takes the whole width. */}
            <View style={{ flexDirection: armed ? 'column' : 'row', gap: 10 }}>
              <View style={armed ? null : { flex: 1 }}>
                <Button
                  testID={`approve-${r.id}`}
                  label={armed ? t.approveAgain(i18n.minutes(r.minutes), name) : t.approve}
                  busy={busy === r.id}
                  onPress={() => void decide(r, 'approve')}
                />
              </View>
              <View style={armed ? null : { flex: 1 }}>
                <Button kind="outline" testID={`reject-${r.id}`} label={t.reject} disabled={busy === r.id} onPress={() => void decide(r, 'reject')} />
              </View>
            </View>
          </Card>
        );
      })}
    </Screen>
  );
}
