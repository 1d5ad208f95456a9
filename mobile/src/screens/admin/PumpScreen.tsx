import { useCallback, useEffect, useRef, useState } from 'react';
import { Text } from 'react-native';

import type { DeviceCreated } from '../../api/types';
import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useCountdown, useLive } from '../../live/LiveProvider';
import { useQueue } from '../../live/useQueue';
import { cashCounted } from '../../receipt';
import { parseWholeNumber } from '../../i18n/format';
import { useOnceKey } from '../../api/onceKey';
import { Body, Button, Card, ErrorBox, Fact, Field, Heading, Loading, Message, Screen, StateBlock } from '../../ui/components';
import { useAsOf } from '../../ui/useAsOf';
import { fortnightStart } from '../../ui/period';
import { useResource } from '../../ui/useResource';
import { deviceOk, deviceSwitching, deviceWords, holdWords, motorTone, motorWord, updateUnderway, updateWords } from '../../ui/words';
import { AdminOnly } from './AdminOnly';
import { StopRunButton } from './StopRunButton';

export function PumpScreen() {
  return (
    <AdminOnly>
      <Pump />
    </AdminOnly>
  );
}

function Pump() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const live = useLive();
  // Read again with every state the app receives (at once on a change of the pump, and every 15 s
  // at least), so a device's last-seen time moves while the owner watches. A firmware download's
  // percent is no change of the pump's state, so while one is underway the devices are read at
  // the pace of polling as well.
  const [tick, setTick] = useState(0);
  const devices = useResource(api.devices, `${live.version} ${tick}`);
  const downloading = devices.data?.some((d) => updateUnderway(d.updateState)) ?? false;
  useEffect(() => {
    if (!downloading) return;
    const timer = setInterval(() => setTick((n) => n + 1), live.intervalMs);
    return () => clearInterval(timer);
  }, [downloading, live.intervalMs]);
  const queue = useQueue(api.queue);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const motor = live.status?.motor;
  // Offline: the state as of the last answer, its clocks stopped (`useAsOf`).
  const asOf = useAsOf();
  const remaining = useCountdown(motor?.remainingSeconds, live.receivedAt, !asOf && motor?.state === 'RUNNING');
  const resume = useCountdown(motor?.resumeInSeconds, live.receivedAt, !asOf && motor?.state === 'HOLD');

  const reload = () => {
    live.refresh();
    void devices.reload();
    void queue.reload();
  };

  const active = queue.data?.active;
  const who = active?.userName ?? '';
  const detail = motor && motor.state !== 'IDLE' ? who || null : t.motorIdleNobody;
  const extra =
    motor?.state === 'HOLD'
      ? [
          holdWords(motor.holdReason, t, resume != null ? i18n.duration(resume) : null),
          remaining != null ? t.timeLeft(i18n.duration(remaining)) : null,
        ]
          .filter(Boolean)
          .join(' · ')
      : remaining != null && motor?.state === 'RUNNING'
        ? t.timeLeft(i18n.duration(remaining))
        : null;

  return (
    <Screen title={t.pumpTitle} testID="pump" onRefresh={reload}>
      {motor ? (
        <StateBlock tone={motorTone(motor.state)} word={motorWord(motor.state, t)} detail={detail} extra={extra} asOf={asOf} />
      ) : live.connection === 'connecting' ? (
        <Loading />
      ) : null}
      {message ? <Message kind={message.kind} text={message.text} testID={`pump-${message.kind}`} /> : null}
      {/* The run shown is the one stopped: a Stop sent twice never ends the next farmer's run. */}
      {motor && motor.state !== 'IDLE' && active ? <StopRunButton name={who} entryId={active.id} onDone={setMessage} /> : null}

      <Heading>{t.device}</Heading>
      {live.status ? (
        <Fact ok={deviceOk(live.status.device.status)} neutral={deviceSwitching(live.status.device.status)} text={deviceWords(live.status.device.status, t)} asOf={asOf} testID="device-status" />
      ) : null}
      {devices.error ? <ErrorBox error={devices.error} onRetry={devices.reload} /> : null}
      {devices.data?.length === 0 ? <Body muted>{t.noDevice}</Body> : null}
      {devices.data?.map((d) => (
        <Card key={d.id} testID={`device-${d.id}`}>
          <Body strong>{d.name}</Body>
          <Body muted>{d.lastSeenAt ? t.lastSeen(i18n.dateTime(d.lastSeenAt)) : t.neverSeen}</Body>
          <Body muted>{t.firmwareLine(d.firmware ?? '—')}</Body>
          {d.updateState ? (
            <Fact
              ok={d.updateState !== 'FAILED'}
              neutral={updateUnderway(d.updateState)}
              text={updateWords(d.updateState, d.updateTo ?? '', i18n.num(d.updatePercent ?? 0), t)}
              testID={`device-update-${d.id}`}
            />
          ) : null}
        </Card>
      ))}
      <RegisterDevice onRegistered={() => void devices.reload()} />
      <PumpTerms />
      <UsageSummary version={live.version} />
    </Screen>
  );
}

/** Registers a device; its key is shown this once, to copy into the device. */
function RegisterDevice({ onRegistered }: { onRegistered: () => void }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<DeviceCreated | null>(null);
  const [error, setError] = useState<string | null>(null);
  // A tap again after an answer lost on the way registers one device, not two.
  const once = useOnceKey();

  const register = async () => {
    setBusy(true);
    setError(null);
    try {
      setCreated(await api.registerDevice(name.trim(), once.key()));
      once.settle();
      setName('');
      onRegistered();
    } catch (err) {
      once.settle(err);
      setError(i18n.error(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card testID="register-device">
      <Body strong>{t.registerDevice}</Body>
      {created?.repeated ? (
        <Message kind="info" text={t.deviceMadeAlready} testID="device-made-already" />
      ) : created ? (
        <>
          {/* What the device's setup page asks for (docs/DEVICE.md): its id, key and link secret,
              the two secrets shown this once. */}
          <Body strong>{t.deviceIdTitle}</Body>
          <Text selectable testID="device-id">
            {created.id}
          </Text>
          <Body strong>{t.deviceKeyTitle}</Body>
          <Text selectable testID="device-key">
            {created.deviceKey}
          </Text>
          <Body strong>{t.linkSecretTitle}</Body>
          <Text selectable testID="device-link-secret">
            {created.linkSecret}
          </Text>
          <Message kind="info" text={t.deviceKeyHelp} />
        </>
      ) : null}
      {error ? <Message kind="error" text={error} testID="register-device-error" /> : null}
      <Field testID="device-name" label={t.deviceName} value={name} onChangeText={setName} maxLength={80} />
      <Button kind="outline" testID="device-register" label={t.register} busy={busy} onPress={() => void register()} />
    </Card>
  );
}

/** The pump's terms: the most minutes one request may ask for, and the price of an hour. */
function PumpTerms() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const terms = useResource(api.terms);
  const [most, setMost] = useState('');
  const [price, setPrice] = useState('');
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);

  // The fields start from the terms in force.
  useEffect(() => {
    if (!terms.data) return;
    setMost(String(terms.data.maxRequestMinutes));
    setPrice(terms.data.pricePerHourTaka == null ? '' : String(terms.data.pricePerHourTaka));
  }, [terms.data]);

  const save = async () => {
    const minutes = parseWholeNumber(most);
    const taka = price.trim() ? parseWholeNumber(price) : null;
    if (minutes === null || (price.trim() !== '' && taka === null)) {
      setNote({ kind: 'error', text: t.badTerms });
      return;
    }
    setBusy(true);
    try {
      const saved = await api.setTerms(minutes, taka);
      setNote({
        kind: 'success',
        text: t.termsSaved(i18n.minutes(saved.maxRequestMinutes), saved.pricePerHourTaka == null ? null : i18n.num(saved.pricePerHourTaka)),
      });
    } catch (err) {
      // What was typed stays, to be put right.
      setNote({ kind: 'error', text: i18n.error(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card testID="terms">
      <Body strong>{t.termsTitle}</Body>
      {terms.error ? <ErrorBox error={terms.error} onRetry={terms.reload} /> : null}
      {note ? <Message kind={note.kind} text={note.text} testID={`terms-${note.kind}`} /> : null}
      <Field testID="terms-max" label={t.termsMaxMinutes} value={most} onChangeText={setMost} keyboardType="number-pad" maxLength={6} />
      <Field testID="terms-price" label={t.termsPrice} value={price} onChangeText={setPrice} keyboardType="number-pad" maxLength={7} />
      <Button kind="outline" testID="terms-save" label={t.saveTerms} busy={busy} disabled={!terms.data} onPress={() => void save()} />
    </Card>
  );
}

/** The last 14 days: time pumped and cash taken, and per farmer. */
function UsageSummary({ version }: { version: number }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  // The farmers' names, read with the runs only when a run names a farmer not named yet: the
  // farmers' list carries every balance, which moves with each second of a run, so read with
  // every status it would come back in full every time. A farmer the list does not name keeps
  // their id, and is not asked for again.
  const named = useRef(new Map<string, string>());
  const load = useCallback(async () => {
    const from = fortnightStart();
    const [usage, receipts] = await Promise.all([api.tenantUsage(from), api.receipts(from)]);
    if (usage.some((u) => !named.current.has(u.userId))) {
      const known = new Map((await api.users()).map((u) => [u.id, u.name]));
      for (const u of usage) if (!known.has(u.userId)) known.set(u.userId, u.userId);
      named.current = known;
    }
    return { usage, receipts, names: named.current };
  }, [api]);
  const data = useResource(load, version);
  if (!data.data) return data.error ? <ErrorBox error={data.error} onRetry={data.reload} /> : null;
  const { usage, receipts, names } = data.data;
  const perFarmer = new Map<string, number>();
  for (const u of usage) {
    const name = names.get(u.userId) ?? u.userId;
    perFarmer.set(name, (perFarmer.get(name) ?? 0) + u.chargedSeconds);
  }
  const total = usage.reduce((sum, u) => sum + u.chargedSeconds, 0);
  const cash = receipts.reduce((sum, r) => sum + cashCounted(r), 0);
  return (
    <Card testID="usage-summary">
      <Body strong>{t.usageTitle}</Body>
      <Body testID="usage-total">{t.usageTotal(i18n.duration(total))}</Body>
      <Body testID="usage-cash">{t.cashTotal(i18n.num(cash))}</Body>
      {usage.length === 0 ? <Body muted>{t.usageNone}</Body> : null}
      {[...perFarmer.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([name, seconds]) => (
          <Body key={name} testID={`usage-${name}`}>{`${name}: ${i18n.duration(seconds)}`}</Body>
        ))}
    </Card>
  );
}
