import { useState, type ReactNode } from 'react';

import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useQueue } from '../../live/useQueue';
import type { Queue } from '../../api/types';
import { parseWholeNumber } from '../../i18n/format';
import { Body, Button, Card, Choices, ErrorBox, Field, Loading, Message, Screen } from '../../ui/components';
import { useConfirm } from '../../ui/useConfirm';
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
  const queue = useQueue(api.queue);
  // The last answer, shown beside the button that asked for it (stop, move, remove).
  const [message, setMessage] = useState<(Answer & { at: string }) | null>(null);
  const doneAt = (at: string) => (m: Answer) => {
    setMessage({ ...m, at });
    void queue.reload();
  };
  const note = (at: string) =>
    message && message.at === at ? <Message kind={message.kind} text={message.text} testID={`admin-queue-${message.kind}`} /> : null;
  return (
    <Screen title={t.queueTitle} testID="admin-queue" onRefresh={queue.reload}>
      {queue.error ? <ErrorBox error={queue.error} onRetry={queue.reload} /> : null}
      {queue.data ? (
        <QueueList
          queue={queue.data}
          activeActions={
            queue.data.active ? (
              <>
                <StopRunButton name={queue.data.active.userName} entryId={queue.data.active.id} onDone={doneAt('stop')} />
                {note('stop')}
              </>
            ) : null
          }
        />
      ) : queue.loading ? (
        <Loading />
      ) : null}
      {/* The run stopped and nobody took its place: its card is gone, its answer stays, under the line. */}
      {queue.data && !queue.data.active ? note('stop') : null}
      {queue.data && queue.data.waiting.length > 1 ? <MoveWaiting queue={queue.data} note={note('move')} onDone={doneAt('move')} /> : null}
      {queue.data && queue.data.waiting.length > 0 ? <RemoveWaiting queue={queue.data} note={note('remove')} onDone={doneAt('remove')} /> : null}
      {/* The last one taken out or moved away: its form is gone, its answer is not. */}
      {queue.data && queue.data.waiting.length <= 1 ? note('move') : null}
      {queue.data && queue.data.waiting.length === 0 ? note('remove') : null}
    </Screen>
  );
}

type Answer = { kind: 'error' | 'success'; text: string };

/** Moves a waiting farmer to another place in line, with a reason (as on the web dashboard). */
function MoveWaiting({ queue, note, onDone }: { queue: Queue; note: ReactNode; onDone: (m: Answer) => void }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  // Nobody is chosen until the owner taps one: a move never goes to a farmer picked for them, and
  // after a move the next one is chosen afresh.
  const [who, setWho] = useState<string>('');
  const [place, setPlace] = useState('1');
  const [why, setWhy] = useState('');
  const [busy, setBusy] = useState(false);
  const chosen = queue.waiting.find((e) => e.userId === who);

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
      setWho('');
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
      {chosen ? null : <Body muted>{t.chooseFarmer}</Body>}
      <Button kind="outline" testID="move-go" label={t.moveButton} busy={busy} disabled={!chosen} onPress={() => void move()} />
      {note}
    </Card>
  );
}

/**
 * Takes a waiting farmer out of the line, with a reason (audited; their minutes stay), after a
 * second tap (as on the web dashboard, where it asks first).
 */
function RemoveWaiting({ queue, note, onDone }: { queue: Queue; note: ReactNode; onDone: (m: Answer) => void }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [who, setWho] = useState<string>('');
  const [why, setWhy] = useState('');
  const [busy, setBusy] = useState(false);
  // The one waiting farmer is the one; of several, the owner chooses (never one picked for them).
  const chosen = queue.waiting.find((e) => e.userId === who) ?? (queue.waiting.length === 1 ? queue.waiting[0] : undefined);
  // The second tap takes out whom the first named, for the reason then typed.
  const confirm = useConfirm(`${chosen?.userId ?? ''}\n${why}`);

  const remove = async () => {
    if (!chosen || !why.trim()) {
      confirm.disarm();
      onDone({ kind: 'error', text: t.badRemove });
      return;
    }
    if (!confirm.tap()) return;
    setBusy(true);
    try {
      await api.removeWaiting(chosen.userId, why.trim());
      setWho('');
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
        onChange={setWho}
        options={queue.waiting.map((e) => ({ value: e.userId, label: `${i18n.num(e.position ?? 0)}. ${e.userName}` }))}
      />
      <Field testID="remove-reason" label={t.removeReason} value={why} onChangeText={setWhy} maxLength={500} />
      {chosen ? null : <Body muted>{t.chooseFarmer}</Body>}
      <Button
        kind="danger"
        testID="remove-go"
        label={confirm.isArmed() && chosen ? t.confirmRemove(chosen.userName) : t.removeButton}
        busy={busy}
        disabled={!chosen}
        onPress={() => void remove()}
      />
      {note}
    </Card>
  );
}
