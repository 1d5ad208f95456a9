import { useState } from 'react';

import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { parseWholeNumber } from '../../i18n/format';
import { Body, Button, Card, Choices, ErrorBox, Field, Heading, Message, Screen, Tag } from '../../ui/components';
import { useResource } from '../../ui/useResource';
import { rejectWords } from '../../ui/words';

const PRESETS = [30, 60, 120] as const;

export function RequestScreen() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [minutes, setMinutes] = useState('30');
  const [note, setNote] = useState('');
  const [sending, setSending] = useState(false);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const mine = useResource(api.myRequests);
  // The pump's own limit (600 min until its owner sets another), said on the form and checked
  // here as the server checks it.
  const terms = useResource(api.ownTerms);
  const most = terms.data?.maxRequestMinutes ?? null;

  const send = async () => {
    const n = parseWholeNumber(minutes);
    if (n === null || n < 1 || n > (most ?? 100000)) {
      setMessage({ kind: 'error', text: most === null ? t.badMinutes : t.requestOverLimit(i18n.minutes(most)) });
      return;
    }
    setSending(true);
    setMessage(null);
    try {
      await api.requestMinutes(n, note.trim() || undefined);
      setMessage({ kind: 'success', text: t.requestSent(i18n.minutes(n)) });
      setNote('');
      void mine.reload();
    } catch (err) {
      setMessage({ kind: 'error', text: i18n.error(err) });
    } finally {
      setSending(false);
    }
  };

  const preset = parseWholeNumber(minutes) ?? -1;
  return (
    <Screen title={t.requestTitle} testID="request" onRefresh={mine.reload}>
      <Body>{t.requestHelp}</Body>
      {most !== null ? (
        <Body muted testID="request-limit">
          {t.requestLimits(i18n.minutes(most))}
        </Body>
      ) : null}
      <Choices
        testID="request-preset"
        value={preset}
        onChange={(m) => setMinutes(String(m))}
        options={PRESETS.filter((m) => most === null || m <= most).map((m) => ({ value: m, label: i18n.minutes(m) }))}
      />
      <Field testID="request-minutes" label={t.minutes} value={minutes} onChangeText={setMinutes} keyboardType="number-pad" maxLength={6} />
      <Field testID="request-note" label={t.note} value={note} onChangeText={setNote} placeholder={t.notePlaceholder} maxLength={500} />
      {message ? <Message kind={message.kind} text={message.text} testID={`request-${message.kind}`} /> : null}
      <Button big testID="request-send" label={t.sendRequest} busy={sending} onPress={() => void send()} />

      <Heading>{t.myRequests}</Heading>
      {mine.error ? <ErrorBox error={mine.error} onRetry={mine.reload} testID="request-list-error" /> : null}
      {mine.data?.length === 0 ? <Body muted>{t.noRequests}</Body> : null}
      {mine.data?.map((r) => (
        <Card key={r.id} testID={`my-request-${r.id}`}>
          <Body strong>{i18n.minutes(r.minutes)}</Body>
          <Tag
            tone={r.status === 'APPROVED' ? 'running' : r.status === 'PENDING' ? 'hold' : 'idle'}
            word={t.requestStatus[r.status] ?? r.status}
          />
          {r.status === 'REJECTED' && r.rejectReason ? (
            <Body strong testID={`my-request-${r.id}-reason`}>
              {t.rejectReasonLine(rejectWords(r.rejectReason, t))}
            </Body>
          ) : null}
          <Body muted>{i18n.dateTime(r.createdAt)}</Body>
          {r.note ? <Body muted>{r.note}</Body> : null}
        </Card>
      ))}
    </Screen>
  );
}
