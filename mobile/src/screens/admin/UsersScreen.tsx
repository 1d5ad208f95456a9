import { useState } from 'react';
import { StyleSheet, Text, View } from 'react-native';

import { useOnceKey } from '../../api/onceKey';
import type { Card as RfidCard, Receipt, UserWithBalance } from '../../api/types';
import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { parseSignedNumber, parseWholeNumber } from '../../i18n/format';
import { Body, Button, Card, Choices, ErrorBox, Field, Loading, Message, Screen, Tag } from '../../ui/components';
import { colors } from '../../ui/theme';
import { daysStart } from '../../ui/period';
import { useConfirm } from '../../ui/useConfirm';
import { useResource } from '../../ui/useResource';
import { AdminOnly } from './AdminOnly';
import { ReceiptCard } from '../ReceiptCard';
import { SmsCommands } from '../SmsCommands';

type Note = { kind: 'error' | 'success'; text: string };
/**
 * The screen's last answer and where it belongs: beside the button that asked (`new`, or a
 * farmer's id and the action, like `u1:recharge`), where the owner is looking, not at the top of
 * a long list. One at a time: an older one does not linger on another card.
 */
type Placed = Note & { at: string };

/** The note, if it belongs here (a live region: a screen reader says it). */
function NoteHere({ note, at }: { note: Placed | null; at: string }) {
  return note && note.at === at ? <Message kind={note.kind} text={note.text} testID={`users-${note.kind}`} /> : null;
}

export function UsersScreen() {
  return (
    <AdminOnly>
      <Users />
    </AdminOnly>
  );
}

function Users() {
  const { api } = useSession();
  const { t } = useI18n();
  const users = useResource(api.users);
  const cards = useResource(api.cards);
  const [open, setOpen] = useState<string | null>(null);
  const [note, setNote] = useState<Placed | null>(null);

  const done = (at: string, answer: Note) => {
    setNote({ ...answer, at });
    void users.reload();
    void cards.reload();
  };

  return (
    <Screen title={t.usersTitle} testID="users" onRefresh={users.reload}>
      {users.error ? <ErrorBox error={users.error} onRetry={users.reload} /> : null}
      {!users.data && users.loading ? <Loading /> : null}
      <NewFarmer note={note} onDone={(answer) => done('new', answer)} />
      {users.data?.length === 0 ? <Body muted>{t.noUsers}</Body> : null}
      {users.data?.map((u) => (
        <UserCard
          key={u.id}
          user={u}
          cards={(cards.data ?? []).filter((c) => c.userId === u.id)}
          open={open === u.id}
          onToggle={() => setOpen(open === u.id ? null : u.id)}
          note={note}
          onDone={(action, answer) => done(`${u.id}:${action}`, answer)}
        />
      ))}
    </Screen>
  );
}

/** A new farmer: name, username (a phone number works) and a first password. */
function NewFarmer({ note, onDone }: { note: Placed | null; onDone: (note: Note) => void }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [name, setName] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);

  const add = async () => {
    setBusy(true);
    try {
      const user = await api.createUser(name.trim(), username.trim(), password);
      setName('');
      setUsername('');
      setPassword('');
      onDone({ kind: 'success', text: t.farmerAdded(user.name) });
    } catch (err) {
      // What was typed stays, to be put right.
      onDone({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card testID="new-farmer">
      <Text style={styles.name}>{t.addFarmerTitle}</Text>
      <Field testID="new-farmer-name" label={t.farmerName} value={name} onChangeText={setName} maxLength={80} />
      <Field testID="new-farmer-username" label={t.username} value={username} onChangeText={setUsername} autoCapitalize="none" maxLength={64} />
      <Field testID="new-farmer-password" label={t.farmerPassword} value={password} onChangeText={setPassword} autoCapitalize="none" maxLength={256} />
      <Button testID="new-farmer-add" label={t.addFarmer} busy={busy} onPress={() => void add()} />
      <NoteHere note={note} at="new" />
    </Card>
  );
}

/** A farmer's RFID cards: give one (a card of another farmer moves), take one away (two taps). */
function Cards({
  user,
  cards,
  note,
  onDone,
}: {
  user: UserWithBalance;
  cards: RfidCard[];
  note: Placed | null;
  onDone: (note: Note) => void;
}) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [uid, setUid] = useState('');
  const [busy, setBusy] = useState(false);
  // Armed by card number.
  const confirm = useConfirm();

  const bind = async () => {
    setBusy(true);
    try {
      const card = await api.bindCard(user.id, uid);
      setUid('');
      onDone({ kind: 'success', text: t.cardBound(card.uid, user.name) });
    } catch (err) {
      onDone({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(false);
    }
  };

  const remove = async (card: string) => {
    if (!confirm.tap(card)) return;
    try {
      await api.removeCard(card);
      onDone({ kind: 'success', text: t.cardRemoved(card) });
    } catch (err) {
      onDone({ kind: 'error', text: i18n.error(err) });
    }
  };

  return (
    <View style={styles.panel} testID={`user-${user.username}-cards`}>
      <Body strong>{t.cardsTitle}</Body>
      {cards.length === 0 ? <Body muted>{t.noCards}</Body> : null}
      {cards.map((c) => (
        <View key={c.uid} style={styles.row}>
          <Text style={styles.grow}>{c.uid}</Text>
          <Button
            kind="danger"
            testID={`card-${c.uid}-remove`}
            label={confirm.isArmed(c.uid) ? t.confirmRemoveCard : t.removeCard}
            onPress={() => void remove(c.uid)}
          />
        </View>
      ))}
      <Field testID={`user-${user.username}-uid`} label={t.cardUid} value={uid} onChangeText={setUid} autoCapitalize="characters" maxLength={32} />
      <Button kind="outline" testID={`user-${user.username}-bind`} label={t.bindCard} busy={busy} onPress={() => void bind()} />
      <NoteHere note={note} at={`${user.id}:cards`} />
    </View>
  );
}

const PRESETS = [10, 30, 60, 120] as const;

type Action = 'recharge' | 'void' | 'correct' | 'rename' | 'suspend' | 'password' | 'cards' | 'phone';

function UserCard({
  user,
  cards,
  open,
  onToggle,
  note,
  onDone,
}: {
  user: UserWithBalance;
  cards: RfidCard[];
  open: boolean;
  onToggle: () => void;
  note: Placed | null;
  onDone: (action: Action, note: Note) => void;
}) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [minutes, setMinutes] = useState('30');
  const [cash, setCash] = useState('');
  const [busy, setBusy] = useState<Action | null>(null);
  const [name, setName] = useState(user.name);
  const [fix, setFix] = useState('');
  const [why, setWhy] = useState('');
  // The receipt open on the card: the one a recharge just made, or one opened from the list.
  const [receipt, setReceipt] = useState<Receipt | null>(null);
  const [receiptsShown, setReceiptsShown] = useState(false);
  // Counts the receipts this card made or voided: the list is read again after each.
  const [receiptsChanged, setReceiptsChanged] = useState(0);
  // One question at a time on a farmer: 'correct', 'void', 'suspend' or 'password'. An edit of
  // the correction, or another receipt opened, forgets it: the second tap does what the label says.
  const confirm = useConfirm(`${fix}\n${why}\n${receipt?.id ?? ''}`);
  const fixMinutes = parseSignedNumber(fix);
  const rechargeKey = useOnceKey();
  const correctionKey = useOnceKey();

  const correct = async () => {
    const n = fixMinutes;
    if (n === null || n === 0 || !why.trim()) {
      confirm.disarm();
      onDone('correct', { kind: 'error', text: t.badCorrection });
      return;
    }
    if (!confirm.tap('correct')) return;
    setBusy('correct');
    try {
      const balance = await api.correct(user.id, n, why.trim(), correctionKey.key());
      correctionKey.settle();
      setFix('');
      setWhy('');
      const delta = `${n > 0 ? '+' : '−'}${i18n.minutes(Math.abs(n))}`;
      const left = i18n.duration(balance.availableSeconds);
      // A try after a lost answer that the server had made already: said so, nothing added now.
      const text = balance.repeated ? t.madeAlready(balance.name, left) : t.corrected(delta, balance.name, left);
      onDone('correct', { kind: 'success', text });
    } catch (err) {
      correctionKey.settle(err);
      onDone('correct', { kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
    }
  };

  const rename = async () => {
    setBusy('rename');
    try {
      const renamed = await api.renameUser(user.id, name.trim());
      setName(renamed.name);
      onDone('rename', { kind: 'success', text: t.renamed(renamed.name) });
    } catch (err) {
      // What was typed stays, to be put right.
      onDone('rename', { kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
    }
  };

  const recharge = async () => {
    const n = parseWholeNumber(minutes);
    if (n === null || n < 1 || n > 100000) {
      onDone('recharge', { kind: 'error', text: t.badMinutes });
      return;
    }
    const taka = cash.trim() ? parseWholeNumber(cash) : undefined;
    if (taka === null) {
      onDone('recharge', { kind: 'error', text: t.badCash });
      return;
    }
    setBusy('recharge');
    try {
      const balance = await api.recharge(user.id, n, undefined, taka, rechargeKey.key());
      rechargeKey.settle();
      // The receipt (when cash was taken, or the pump has a price) is shown, to share or print.
      const written = balance.receiptId ? await api.receipt(balance.receiptId) : null;
      setReceipt(written);
      if (written) setReceiptsChanged((n) => n + 1);
      const paid = written ? written.cashTaka : null;
      // Made: the minutes are chosen afresh for another recharge, so a second tap on the button
      // cannot pass for this one again.
      setMinutes('');
      setCash('');
      const added = i18n.minutes(n);
      const left = i18n.duration(balance.availableSeconds);
      onDone('recharge', {
        kind: 'success',
        text: balance.repeated
          ? t.madeAlready(balance.name, left)
          : paid === null
            ? t.rechargeDone(added, balance.name, left)
            : t.rechargeReceipt(added, balance.name, left, i18n.num(paid)),
      });
    } catch (err) {
      // What was typed stays: a tap again sends the same recharge (the same key).
      rechargeKey.settle(err);
      onDone('recharge', { kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
    }
  };

  // The receipt open (just made, or opened from the list) was a mistake (300 minutes typed for 30):
  // taken back, minutes and cash.
  const voidReceipt = async () => {
    if (!receipt || !confirm.tap('void')) return;
    setBusy('void');
    try {
      const voided = await api.voidReceipt(receipt.id);
      setReceipt(voided);
      setReceiptsChanged((n) => n + 1);
      onDone('void', { kind: 'success', text: t.voidedDone(voided.number, i18n.minutes(voided.minutes), voided.userName) });
    } catch (err) {
      onDone('void', { kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
    }
  };

  const resetPassword = async () => {
    if (!confirm.tap('password')) return;
    setBusy('password');
    try {
      const made = await api.resetPassword(user.id);
      onDone('password', { kind: 'success', text: t.newPassword(made.name, made.password) });
    } catch (err) {
      onDone('password', { kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
    }
  };

  const toggleSuspension = async () => {
    // Letting a farmer back in asks nothing; locking one out asks twice.
    if (!user.suspended && !confirm.tap('suspend')) return;
    confirm.disarm();
    setBusy('suspend');
    try {
      if (user.suspended) {
        await api.unsuspend(user.id);
        onDone('suspend', { kind: 'success', text: t.unsuspendedDone(user.name) });
      } else {
        await api.suspend(user.id);
        onDone('suspend', { kind: 'success', text: t.suspendedDone(user.name) });
      }
    } catch (err) {
      onDone('suspend', { kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(null);
    }
  };

  return (
    <Card testID={`user-${user.username}`}>
      <View style={styles.row}>
        <View style={styles.grow}>
          <Text style={styles.name}>{user.name}</Text>
          <Body muted>{user.username}</Body>
        </View>
        <Text style={styles.balance} testID={`user-${user.username}-balance`}>
          {i18n.duration(user.availableSeconds)}
        </Text>
      </View>
      {user.suspended ? <Tag tone="hold" word={t.suspended} /> : null}
      <Button kind="outline" label={open ? t.closePanel : t.manageUser} testID={`user-${user.username}-open`} onPress={onToggle} />
      {open ? (
        <View style={styles.panel}>
          <Field
            testID={`user-${user.username}-minutes`}
            label={t.rechargeMinutes}
            value={minutes}
            onChangeText={setMinutes}
            keyboardType="number-pad"
            maxLength={6}
          />
          <Choices
            testID={`user-${user.username}-preset`}
            value={parseWholeNumber(minutes) ?? -1}
            onChange={(m) => setMinutes(String(m))}
            options={PRESETS.map((m) => ({ value: m, label: i18n.minutes(m) }))}
          />
          <Field
            testID={`user-${user.username}-cash`}
            label={t.cashTaken}
            value={cash}
            onChangeText={setCash}
            keyboardType="number-pad"
            maxLength={8}
          />
          <Button
            testID={`user-${user.username}-recharge`}
            label={minutes.trim() ? `${t.recharge} +${i18n.minutes(parseWholeNumber(minutes) ?? 0)}` : t.recharge}
            busy={busy === 'recharge'}
            disabled={!minutes.trim()}
            onPress={() => void recharge()}
          />
          <NoteHere note={note} at={`${user.id}:recharge`} />
          <Button
            kind="outline"
            testID={`user-${user.username}-receipts-show`}
            label={receiptsShown ? t.receiptsHide : t.receiptsShow(i18n.num(RECEIPT_DAYS))}
            expanded={receiptsShown}
            onPress={() => setReceiptsShown(!receiptsShown)}
          />
          {receiptsShown ? (
            <FarmerReceipts user={user} open={receipt} changed={receiptsChanged} onOpen={setReceipt} />
          ) : null}
          {receipt ? <ReceiptCard key={receipt.id} receipt={receipt} testID={`user-${user.username}-receipt`} /> : null}
          {receipt && !receipt.void ? (
            <Button
              kind="danger"
              testID={`user-${user.username}-void`}
              label={confirm.isArmed('void') ? t.confirmVoid(i18n.minutes(receipt.minutes), user.name) : t.voidReceipt}
              busy={busy === 'void'}
              onPress={() => void voidReceipt()}
            />
          ) : null}
          <NoteHere note={note} at={`${user.id}:void`} />
          <Field testID={`user-${user.username}-fix`} label={t.correctionMinutes} value={fix} onChangeText={setFix} maxLength={7} />
          <Field testID={`user-${user.username}-why`} label={t.correctionReason} value={why} onChangeText={setWhy} maxLength={500} />
          <Button
            kind="outline"
            testID={`user-${user.username}-correct`}
            label={
              confirm.isArmed('correct') && fixMinutes
                ? fixMinutes > 0
                  ? t.correctAgainAdd(i18n.minutes(fixMinutes), user.name)
                  : t.correctAgainTake(i18n.minutes(-fixMinutes), user.name)
                : t.correct
            }
            busy={busy === 'correct'}
            onPress={() => void correct()}
          />
          <NoteHere note={note} at={`${user.id}:correct`} />
          <Field testID={`user-${user.username}-name`} label={t.newName} value={name} onChangeText={setName} maxLength={80} />
          <Button
            kind="outline"
            testID={`user-${user.username}-rename`}
            label={t.rename}
            busy={busy === 'rename'}
            onPress={() => void rename()}
          />
          <NoteHere note={note} at={`${user.id}:rename`} />
          <Button
            kind={user.suspended ? 'outline' : 'danger'}
            testID={`user-${user.username}-suspend`}
            label={user.suspended ? t.unsuspend : confirm.isArmed('suspend') ? t.confirmSuspend(user.name) : t.suspend}
            busy={busy === 'suspend'}
            onPress={() => void toggleSuspension()}
          />
          <NoteHere note={note} at={`${user.id}:suspend`} />
          <Button
            kind="outline"
            testID={`user-${user.username}-password`}
            label={confirm.isArmed('password') ? t.confirmResetPassword : t.resetPassword}
            busy={busy === 'password'}
            onPress={() => void resetPassword()}
          />
          <NoteHere note={note} at={`${user.id}:password`} />
          <Cards user={user} cards={cards} note={note} onDone={(answer) => onDone('cards', answer)} />
          <SmsPhone user={user} note={note} onDone={(answer) => onDone('phone', answer)} />
        </View>
      ) : null}
    </Card>
  );
}

/** How far back the farmer's panel lists their receipts. */
const RECEIPT_DAYS = 90;

/**
 * A farmer's receipts of the last [`RECEIPT_DAYS`] days, newest first, void ones marked: a tap
 * opens one on the card, to share, print or void (a farmer who lost theirs, a mistake found
 * later). Read when shown, and again after the card made or voided one (`changed`).
 */
function FarmerReceipts({
  user,
  open,
  changed,
  onOpen,
}: {
  user: UserWithBalance;
  open: Receipt | null;
  changed: number;
  onOpen: (receipt: Receipt) => void;
}) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const list = useResource(() => api.farmerReceipts(user.id, daysStart(RECEIPT_DAYS)), changed);
  const testID = `user-${user.username}-receipts`;
  if (!list.data) {
    return list.error ? <ErrorBox error={list.error} onRetry={() => void list.reload()} testID={`${testID}-error`} /> : <Loading />;
  }
  return (
    <View style={styles.panel} testID={testID}>
      {list.data.length === 0 ? <Body muted>{t.noReceipts(i18n.num(RECEIPT_DAYS))}</Body> : null}
      {list.data.map((r) => (
        <Button
          key={r.id}
          kind={open?.id === r.id ? 'neutral' : 'outline'}
          testID={`${testID}-${r.number}`}
          label={[i18n.dateTime(r.at), i18n.minutes(r.minutes), t.receiptTaka(i18n.num(r.cashTaka)), ...(r.void ? [t.receiptVoidMark] : [])].join(' · ')}
          onPress={() => onOpen(r)}
        />
      ))}
    </View>
  );
}

/**
 * A feature-phone farmer's number for SMS, enrolled by the owner: it waits until the farmer texts
 * the code from that phone (the owner stands with them and reads out what to send). A number
 * dropped because too many wrong codes were texted from it says so, until it is enrolled again.
 */
function SmsPhone({ user, note, onDone }: { user: UserWithBalance; note: Placed | null; onDone: (note: Note) => void }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [phone, setPhone] = useState('');
  const [language, setLanguage] = useState<'en' | 'bn'>('bn');
  const [busy, setBusy] = useState(false);
  const current = useResource(() => api.farmerPhone(user.id), user.id);
  const dropped = current.data?.droppedPhone;
  // A confirmed number: the owner reads out what the farmer may text from it.
  const confirmed = current.data?.phone;

  const enrol = async () => {
    setBusy(true);
    try {
      const enrolled = await api.enrolPhone(user.id, phone.trim(), language);
      void current.reload();
      const to = enrolled.smsNumber ?? t.alertsSmsNumberUnknown;
      const text =
        enrolled.pendingPhone && enrolled.phoneCode
          ? `${t.alertsPhoneWaiting(enrolled.pendingPhone)} ${t.smsSend(user.name, enrolled.phoneCode, to)}`
          : t.alertsPhoneConfirmed(enrolled.phone ?? phone.trim());
      onDone({ kind: 'success', text });
    } catch (err) {
      // What was typed stays, to be put right.
      onDone({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <View style={styles.panel} testID={`user-${user.username}-sms`}>
      <Text style={styles.section}>{t.smsTitle}</Text>
      <Body muted>{t.smsHelp}</Body>
      {confirmed ? (
        <>
          <Body testID={`user-${user.username}-phone-confirmed`}>{t.alertsPhoneConfirmed(confirmed)}</Body>
          <SmsCommands
            testID={`user-${user.username}-phone-commands`}
            intro={t.smsCommands(user.name, current.data?.smsNumber ?? t.alertsSmsNumberUnknown)}
            commands={t.smsFarmerCommands}
          />
        </>
      ) : null}
      {dropped ? (
        <Body muted testID={`user-${user.username}-phone-dropped`}>
          {t.alertsPhoneDropped(dropped)}
        </Body>
      ) : null}
      <Field
        testID={`user-${user.username}-phone`}
        label={t.alertsPhone}
        value={phone}
        onChangeText={setPhone}
        keyboardType="phone-pad"
        maxLength={16}
      />
      <Choices
        testID={`user-${user.username}-phone-language`}
        value={language}
        onChange={setLanguage}
        options={[
          { value: 'bn', label: 'বাংলা' },
          { value: 'en', label: 'English' },
        ]}
      />
      <Button
        kind="outline"
        testID={`user-${user.username}-phone-save`}
        label={t.smsSave}
        busy={busy}
        disabled={!phone.trim()}
        onPress={() => void enrol()}
      />
      <NoteHere note={note} at={`${user.id}:phone`} />
    </View>
  );
}

const styles = StyleSheet.create({
  row: { flexDirection: 'row', alignItems: 'center', gap: 10 },
  grow: { flex: 1 },
  name: { fontSize: 22, fontWeight: '800', color: colors.text },
  balance: { fontSize: 22, fontWeight: '900', color: colors.text, textAlign: 'right' },
  panel: { gap: 12, marginTop: 4 },
  section: { fontSize: 18, fontWeight: '800', color: colors.text, marginTop: 8 },
});
