import { useState } from 'react';

import { registerForPush } from '../alerts/push';
import { useAuth, useSession } from '../auth/AuthProvider';
import type { AlertProfile } from '../api/types';
import { useI18n } from '../i18n/I18n';
import { Body, Button, Card, ErrorBox, Field, Heading, Loading, Message, Screen } from '../ui/components';
import { useResource } from '../ui/useResource';
import { PasswordSection } from './ChangePasswordCard';
import { SmsCommands } from './SmsCommands';

/**
 * Everyone's bell: their notifications, newest first, and how they hear (push, SMS). A new SMS
 * number waits until its holder texts the code shown here from it: the screen says what to send.
 * First, folded behind a button, their own password (the person's own settings live here; sign-out
 * and language are in the header): above the list, never below a hundred notifications.
 */
export function NotificationsScreen() {
  const { api, user } = useSession();
  const { pushRegistered } = useAuth();
  const i18n = useI18n();
  const { t } = i18n;
  const list = useResource(() => api.notifications(i18n.lang), i18n.lang);
  const profile = useResource(api.alertProfile);
  // `null` until the person types: the stored phone (the one waiting, when one is) shows until
  // then, and what they typed is never replaced by a profile that arrives later.
  const [typed, setTyped] = useState<string | null>(null);
  const phone = typed ?? profile.data?.pendingPhone ?? profile.data?.phone ?? '';
  const [busy, setBusy] = useState<'read' | 'push' | 'save' | null>(null);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);


  const act = async (what: 'read' | 'push' | 'save', run: () => Promise<string | null>) => {
    setBusy(what);
    setMessage(null);
    try {
      const done = await run();
      if (done) setMessage({ kind: 'success', text: done });
    } catch (err) {
      setMessage({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
    }
  };

  const markRead = () =>
    act('read', async () => {
      await api.markRead();
      await list.reload();
      return null;
    });
  const push = () =>
    act('push', async () => {
      const result = await registerForPush(api);
      if (!result.ok) {
        setMessage({ kind: 'error', text: t.alertsPushDenied });
        return null;
      }
      // Signing out takes this phone's token out of the account again.
      await pushRegistered(result.token);
      await profile.reload();
      return t.alertsPushDone;
    });
  const save = () =>
    act('save', async () => {
      const current = profile.data ?? (await api.alertProfile());
      await api.setAlertProfile({ ...current, phone: phone.trim() || null, language: i18n.lang });
      await profile.reload();
      return t.alertsSaved;
    });

  const unread = list.data?.unread ?? 0;
  return (
    <Screen title={t.alertsTitle} testID="alerts" onRefresh={list.reload}>
      <PasswordSection />
      {list.error ? <ErrorBox error={list.error} onRetry={list.reload} /> : null}
      {!list.data && list.loading ? <Loading /> : null}
      {list.data?.notifications.length === 0 ? <Body muted>{t.alertsNone}</Body> : null}
      {unread > 0 ? (
        <>
          <Body strong testID="alerts-unread">{t.alertsUnread(i18n.num(unread))}</Body>
          <Button testID="alerts-read" label={t.alertsMarkRead} busy={busy === 'read'} onPress={() => void markRead()} />
        </>
      ) : null}
      {list.data?.notifications.map((n) => (
        <Card key={n.id} testID={`notification-${n.id}`}>
          <Body strong>{n.read ? n.title : `● ${n.title}`}</Body>
          <Body>{n.text}</Body>
          <Body muted>{i18n.dateTime(n.at)}</Body>
        </Card>
      ))}

      <Heading>{t.alertsHowTitle}</Heading>
      {message ? <Message kind={message.kind} text={message.text} testID={`alerts-${message.kind}`} /> : null}
      <Button testID="alerts-push" label={t.alertsPushOn} busy={busy === 'push'} onPress={() => void push()} />
      {profile.data ? <PhoneState profile={profile.data} role={user.role} /> : null}
      <Field testID="alerts-phone" label={t.alertsPhone} value={phone} onChangeText={setTyped} keyboardType="phone-pad" maxLength={16} />
      <Button testID="alerts-save" label={t.alertsSave} busy={busy === 'save'} onPress={() => void save()} />
    </Screen>
  );
}

/**
 * The confirmed SMS phone, and the number waiting with exactly what to text from it (or why a
 * number that waited is gone: too many wrong codes were texted from it).
 */
function PhoneState({ profile, role }: { profile: AlertProfile; role: string }) {
  const { t } = useI18n();
  const pending = profile.pendingPhone;
  // What the confirmed phone may text: a farmer's commands, or an owner's STATUS.
  const commands = role === 'user' ? t.smsFarmerCommands : role === 'admin' ? t.smsOwnerCommands : null;
  return (
    <>
      <Body testID="alerts-phone-confirmed" muted={!profile.phone}>
        {profile.phone ? t.alertsPhoneConfirmed(profile.phone) : t.alertsPhoneNone}
      </Body>
      {commands && profile.phone ? (
        <SmsCommands
          testID="alerts-phone-commands"
          intro={t.alertsPhoneCommands(profile.smsNumber ?? t.alertsSmsNumberUnknown)}
          commands={commands}
        />
      ) : null}
      {pending ? <Body muted>{t.alertsPhoneWaiting(pending)}</Body> : null}
      {pending && profile.phoneCode ? (
        <Body strong testID="alerts-phone-send">
          {t.alertsPhoneSend(pending, profile.phoneCode, profile.smsNumber ?? t.alertsSmsNumberUnknown)}
        </Body>
      ) : null}
      {pending && !profile.phoneCode ? <Body muted>{t.alertsPhoneExpired(pending)}</Body> : null}
      {profile.droppedPhone ? (
        <Body muted testID="alerts-phone-dropped">
          {t.alertsPhoneDropped(profile.droppedPhone)}
        </Body>
      ) : null}
    </>
  );
}
