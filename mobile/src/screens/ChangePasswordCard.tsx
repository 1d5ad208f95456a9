import { useState } from 'react';

import { ApiError } from '../api/client';
import { useSession } from '../auth/AuthProvider';
import { useI18n } from '../i18n/I18n';
import { Body, Button, Card, Field, Heading, Message } from '../ui/components';

/** The server's rule for a new password, in characters (as it counts them: code points). */
const MIN_LENGTH = 8;
const MAX_LENGTH = 256;

/**
 * The password card folded behind one button, for the top of a screen: found at once, without
 * scrolling past a list, and out of the way until it is wanted. It stays open after a change, so
 * its answer can be read; the button folds it away.
 */
export function PasswordSection() {
  const { t } = useI18n();
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button
        kind="outline"
        testID="password-open"
        label={open ? t.passwordClose : t.passwordTitle}
        expanded={open}
        onPress={() => setOpen(!open)}
      />
      {open ? <ChangePasswordCard /> : null}
    </>
  );
}

/**
 * The signed-in person changes their own password: the current one, then the new one twice.
 * Every other phone and browser of the account is signed out; this one stays signed in. The
 * password text is never put in a message, and the fields are emptied once it is changed.
 */
export function ChangePasswordCard() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [sending, setSending] = useState(false);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);

  const send = async () => {
    // Caught before sending: every refused try of the current password counts against the sign-in limits.
    if (!current) return setMessage({ kind: 'error', text: t.passwordNeedCurrent });
    if ([...next].length < MIN_LENGTH) return setMessage({ kind: 'error', text: t.passwordTooShort });
    if (next !== again) {
      // The fields hide what was typed: both new ones are typed again.
      setNext('');
      setAgain('');
      return setMessage({ kind: 'error', text: t.passwordMismatch });
    }
    setSending(true);
    setMessage(null);
    try {
      await api.changePassword(current, next);
      setCurrent('');
      setNext('');
      setAgain('');
      setMessage({ kind: 'success', text: t.passwordChanged });
    } catch (err) {
      // The new one was fine: only the current one is typed again.
      if (err instanceof ApiError && err.code === 'WRONG_PASSWORD') setCurrent('');
      setMessage({ kind: 'error', text: i18n.error(err) });
    } finally {
      setSending(false);
    }
  };

  const secret = { secureTextEntry: true, autoCapitalize: 'none', autoCorrect: false, maxLength: MAX_LENGTH } as const;
  return (
    <Card testID="password">
      <Heading>{t.passwordTitle}</Heading>
      <Field
        testID="password-current"
        label={t.passwordCurrent}
        value={current}
        onChangeText={setCurrent}
        autoComplete="current-password"
        textContentType="password"
        {...secret}
      />
      <Field
        testID="password-new"
        label={t.passwordNew}
        value={next}
        onChangeText={setNext}
        autoComplete="new-password"
        textContentType="newPassword"
        {...secret}
      />
      <Body muted testID="password-rule">
        {t.passwordRule}
      </Body>
      <Field
        testID="password-again"
        label={t.passwordAgain}
        value={again}
        onChangeText={setAgain}
        autoComplete="new-password"
        textContentType="newPassword"
        onSubmitEditing={() => void send()}
        {...secret}
      />
      {message ? <Message kind={message.kind} text={message.text} testID={`password-${message.kind}`} /> : null}
      <Button testID="password-send" label={t.passwordChange} busy={sending} onPress={() => void send()} />
    </Card>
  );
}
