import { useState } from 'react';
import { View } from 'react-native';

import { ApiError } from '../../api/client';
import type { MinuteRequest, RejectReason } from '../../api/types';
import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { Body, Button, Card, Choices, ErrorBox, Loading, Message, Screen } from '../../ui/components';
import { useConfirm } from '../../ui/useConfirm';
import { useResource } from '../../ui/useResource';
import { rejectWords } from '../../ui/words';
import { AdminOnly } from './AdminOnly';

const APPROVE_ASKS_ABOVE_MINUTES = 120;

/** The reasons the owner may give, in the order offered; `NONE` rejects without one. */
const REJECT_REASONS: RejectReason[] = ['NOT_PAID', 'WRONG_AMOUNT', 'TOO_MANY', 'PUMP_CLOSED'];
type Picked = RejectReason | 'NONE';

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
  // The answer to a decision is shown where the owner tapped, not at the top of a long list: the
  // decided request keeps its place, its buttons replaced by what was done, until the list is
  // pulled to refresh or another request is decided.
  const [answer, setAnswer] = useState<{ request: MinuteRequest; kind: 'error' | 'success'; text: string } | null>(null);
  // The requests decided here. A decision is final, so the pending list read before it (still
  // reloading, or read just before) no longer offers them: the decided one shows as the server
  // answered at once, never its buttons again for a moment.
  const [decided, setDecided] = useState<ReadonlySet<string>>(new Set());
  // Reject first asks why (one reason or none), in the request's own card; a second button sends it.
  const [rejecting, setRejecting] = useState<{ id: string; reason: Picked } | null>(null);

  const decide = async (r: MinuteRequest, how: 'approve' | 'reject') => {
    const name = data.data?.names.get(r.userId) ?? t.unknownUser;
    if (how === 'approve' && r.minutes > APPROVE_ASKS_ABOVE_MINUTES && !confirm.tap(r.id)) return;
    confirm.disarm();
    setBusy(r.id);
    try {
      // The server's answer is the decided request (a rejection with the reason it kept): the card
      // shows that one.
      if (how === 'approve') {
        const done = await api.approve(r.id);
        setAnswer({ request: { ...r, ...done }, kind: 'success', text: t.approved(name, i18n.minutes(r.minutes)) });
      } else {
        const picked = rejecting?.id === r.id ? rejecting.reason : 'NONE';
        const done = await api.reject(r.id, picked === 'NONE' ? null : picked);
        // The reason the server kept, in words, when there is one (as the dashboard's message says it).
        const why = done.rejectReason ? rejectWords(done.rejectReason, t) : null;
        setAnswer({ request: { ...r, ...done }, kind: 'success', text: why ? t.rejectedBecause(name, why) : t.rejected(name) });
      }
      setDecided((ids) => new Set(ids).add(r.id));
      setRejecting(null);
    } catch (err) {
      setAnswer({ request: r, kind: 'error', text: i18n.error(err) });
      // Decided already (by another owner, on another screen): final too, so no buttons come back.
      if (err instanceof ApiError && err.code === 'ALREADY_DECIDED') setDecided((ids) => new Set(ids).add(r.id));
    } finally {
      setBusy(null);
      void data.reload();
    }
  };
  const askWhy = (r: MinuteRequest) => {
    confirm.disarm();
    setRejecting({ id: r.id, reason: 'NONE' });
  };

  const pending = (data.data?.requests ?? []).filter((r) => !decided.has(r.id));
  // The decided request, gone from the pending list, is shown where it was (newest first).
  const shown =
    answer && !pending.some((r) => r.id === answer.request.id)
      ? [...pending, answer.request].sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      : pending;
  const refresh = () => {
    setAnswer(null);
    void data.reload();
  };

  return (
    <Screen title={t.requestsTitle} testID="requests" onRefresh={refresh}>
      {data.error ? <ErrorBox error={data.error} onRetry={data.reload} /> : null}
      {!data.data && data.loading ? <Loading /> : null}
      {data.data && pending.length === 0 ? <Body muted>{t.noPending}</Body> : null}
      {shown.map((r) => {
        const name = data.data?.names.get(r.userId) ?? t.unknownUser;
        const armed = confirm.isArmed(r.id);
        const said = answer?.request.id === r.id ? answer : null;
        const open = pending.some((p) => p.id === r.id);
        const why = rejecting?.id === r.id ? rejecting : null;
        return (
          <Card key={r.id} testID={`request-${r.id}`}>
            <Body strong>{name}</Body>
            <Body strong>{i18n.minutes(r.minutes)}</Body>
            {/* Decided, the balance read since already holds the minutes: "now → after" would count them twice. */}
            {open ? (
              <Body testID={`request-${r.id}-balance`}>
                {t.balanceNowAfter(
                  i18n.duration(data.data?.balances.get(r.userId) ?? 0),
                  i18n.duration((data.data?.balances.get(r.userId) ?? 0) + r.minutes * 60),
                )}
              </Body>
            ) : null}
            {r.note ? <Body>{r.note}</Body> : null}
            <Body muted>{i18n.dateTime(r.createdAt)}</Body>
            {said ? <Message kind={said.kind} text={said.text} testID={`requests-${said.kind}`} /> : null}
            {open && why ? (
              <>
                <Body strong>{t.rejectWhy}</Body>
                <Choices<Picked>
                  stacked
                  testID={`reject-${r.id}-reason`}
                  value={why.reason}
                  onChange={(reason) => setRejecting({ id: r.id, reason })}
                  options={[
                    { value: 'NONE', label: t.rejectNoReason },
                    ...REJECT_REASONS.map((code) => ({ value: code, label: rejectWords(code, t) })),
                  ]}
                />
                <Button
                  kind="danger"
                  testID={`reject-${r.id}-send`}
                  label={t.rejectConfirm}
                  busy={busy === r.id}
                  onPress={() => void decide(r, 'reject')}
                />
                <Button kind="outline" testID={`reject-${r.id}-back`} label={t.rejectBack} disabled={busy === r.id} onPress={() => setRejecting(null)} />
              </>
            ) : null}
            {/* Armed, the approve button names the minutes and the farmer: it takes the whole width. */}
            {open && !why ? (
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
                  <Button kind="outline" testID={`reject-${r.id}`} label={t.reject} disabled={busy === r.id} onPress={() => askWhy(r)} />
                </View>
              </View>
            ) : null}
          </Card>
        );
      })}
    </Screen>
  );
}
