import { useState } from 'react';

import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useLive } from '../../live/LiveProvider';
import type { Queue } from '../../api/types';
import { parseWholeNumber } from '../../i18n/format';
import { Body, Button, Card, Choices, ErrorBox, Field, Loading, Message, Screen } from '../../ui/components';
import { useResource } from '../../ui/useResource';
import { QueueList } from '../QueueList';
import { AdminOnly } from './AdminOnly';
import { StopRunButton } from './StopRunButton';

export function AdminQueueScreen() {
  return (
    <AdminOnly>
      <AdminQueue />
    </AdminOnly>
  );
}

function AdminQueue() {
  const { api } = useSession();
  const { t } = useI18n();
  const live = useLive();
  const queue = useResource(api.queue, live.version);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const done = (m: { kind: 'error' | 'success'; text: string }) => {
    setMessage(m);
    void queue.reload();
  };
  return (
    <Screen title={t.queueTitle} testID="admin-queue" onRefresh={queue.reload}>
      {message ? <Message kind={message.kind} text={message.text} testID={`admin-queue-${message.kind}`} /> : null}
      {queue.error ? <ErrorBox error={queue.error} onRetry={queue.reload} /> : null}
      {queue.data ? (
        <QueueList
          queue={queue.data}
          activeActions={queue.data.active ? <StopRunButton name={queue.data.active.userName} onDone={done} /> : null}
        />
      ) : queue.loading ? (
        <Loading />
      ) : null}
      {queue.data && queue.data.waiting.length > 1 ? <MoveWaiting queue={queue.data} onDone={done} /> : null}
      {queue.data && queue.data.waiting.length > 0 ? <RemoveWaiting queue={queue.data} onDone={done} /> : null}
    </Screen>
  );
}

/** Moves a waiting farmer to another place in line, with a reason (as on the web dashboard). */
function MoveWaiting({ queue, onDone }: { queue: Queue; onDone: (m: { kind: 'error' | 'success'; text: string }) => void }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [who, setWho] = useState<string>('');
  const [place, setPlace] = useState('1');
  const [why, setWhy] = useState('');
  const [busy, setBusy] = useState(false);
  const chosen = queue.waiting.find((e) => e.userId === who) ?? queue.waiting[queue.waiting.length - 1];

  const move = async () => {
    const position = parseWholeNumber(place);
    if (!chosen || position === null) {
      onDone({ kind: 'error', text: t.badPosition });
      return;
    }
    setBusy(true);
    try {
      const next = await api.moveWaiting(chosen.userId, position, why.trim());
      const landed = next.waiting.find((e) => e.userId === chosen.userId);
      setWhy('');
      onDone({ kind: 'success', text: t.moved(chosen.userName, i18n.num(landed?.position ?? position)) });
    } catch (err) {
      // What was typed stays, to be put right.
      onDone({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card testID="move-waiting">
      <Body strong>{t.moveTitle}</Body>
      <Choices
        testID="move-who"
        value={chosen?.userId ?? ''}
        onChange={setWho}
        options={queue.waiting.map((e) => ({ value: e.userId, label: `${i18n.num(e.position ?? 0)}. ${e.userName}` }))}
      />
      <Field testID="move-place" label={t.moveTo} value={place} onChangeText={setPlace} keyboardType="number-pad" maxLength={4} />
      <Field testID="move-reason" label={t.moveReason} value={why} onChangeText={setWhy} maxLength={500} />
      <Button kind="outline" testID="move-go" label={t.moveButton} busy={busy} onPress={() => void move()} />
    </Card>
  );
}

/**
 * Takes a waiting farmer out of the line, with a reason (audited; their minutes stay), after a
 * second tap (as on the web dashboard, where it asks first).
 */
function RemoveWaiting({ queue, onDone }: { queue: Queue; onDone: (m: { kind: 'error' | 'success'; text: string }) => void }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [who, setWho] = useState<string>('');
  const [why, setWhy] = useState('');
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  const chosen = queue.waiting.find((e) => e.userId === who) ?? queue.waiting[0];

  const choose = (userId: string) => {
    setWho(userId);
    setConfirm(false);
  };
  const remove = async () => {
    if (!chosen || !why.trim()) {
      onDone({ kind: 'error', text: t.badRemove });
      return;
    }
    if (!confirm) {
      setConfirm(true);
      return;
    }
    setConfirm(false);
    setBusy(true);
    try {
      await api.removeWaiting(chosen.userId, why.trim());
      setWhy('');
      onDone({ kind: 'success', text: t.removedFromLine(chosen.userName) });
    } catch (err) {
      // What was typed stays, to be put right.
      onDone({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card testID="remove-waiting">
      <Body strong>{t.removeTitle}</Body>
      <Choices
        testID="remove-who"
        value={chosen?.userId ?? ''}
        onChange={choose}
        options={queue.waiting.map((e) => ({ value: e.userId, label: `${i18n.num(e.position ?? 0)}. ${e.userName}` }))}
      />
      <Field testID="remove-reason" label={t.removeReason} value={why} onChangeText={setWhy} maxLength={500} />
      <Button
        kind="danger"
        testID="remove-go"
        label={confirm && chosen ? t.confirmRemove(chosen.userName) : t.removeButton}
        busy={busy}
        onPress={() => void remove()}
      />
    </Card>
  );
}
