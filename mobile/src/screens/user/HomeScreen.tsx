import { useState } from 'react';
import { View } from 'react-native';

import { OfflineError } from '../../api/client';
import { useI18n } from '../../i18n/I18n';
import { useCountdown, useLive } from '../../live/LiveProvider';
import { Body, Button, Card, Choices, ErrorBox, Fact, Loading, Message, Screen, StateBlock } from '../../ui/components';
import { useAsOf } from '../../ui/useAsOf';
import { useConfirm } from '../../ui/useConfirm';
import { deviceOk, deviceSwitching, deviceWords, holdWords, isActive, isLive } from '../../ui/words';

const LIMITS = [0, 15, 30, 60] as const;

export function HomeScreen() {
  const live = useLive();
  const i18n = useI18n();
  const { t } = i18n;
  const [limit, setLimit] = useState<number>(0);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);

  const status = live.status;
  const mine = status?.me.entry;
  const motor = status?.motor;
  // Leaving the line loses the place: it takes a second tap, about this place in line.
  const confirmLeave = useConfirm(mine?.status === 'WAITING' ? mine.id : '');
  // Offline, what is shown is what was known then: no clock ticks on as if it were live.
  const asOf = useAsOf();
  const ticking = asOf === null;
  const remainingSource = isActive(mine) ? (mine.remainingSeconds ?? motor?.remainingSeconds) : motor?.remainingSeconds;
  const remaining = useCountdown(remainingSource, live.receivedAt, ticking && motor?.state === 'RUNNING');
  const resumeIn = useCountdown(motor?.resumeInSeconds, live.receivedAt, ticking && motor?.state === 'HOLD');
  const resume = resumeIn != null ? i18n.duration(resumeIn) : null;
  // While my run is RUNNING the balance falls with it, second by second, between polls.
  const balance = useCountdown(status?.me.availableSeconds, live.receivedAt, ticking && mine?.status === 'RUNNING') ?? 0;
  // The server's estimate for my place in line falls with the run ahead of me.
  const waiting = mine?.status === 'WAITING' ? mine.estimatedWaitSeconds : null;
  const wait = useCountdown(waiting, live.receivedAt, ticking && motor?.state === 'RUNNING');

  if (!status || !motor) {
    return (
      <Screen testID="home">
        {live.connection === 'offline' ? <ErrorBox error={new OfflineError()} onRetry={live.refresh} /> : <Loading />}
      </Screen>
    );
  }

  const left = remaining != null ? t.timeLeft(i18n.duration(remaining)) : null;
  // The farmer's own state leads (me.state, from the server); the motor comes second.
  const own = status.me.state;
  let block;
  if (own === 'WAITING' && mine) {
    const busy = motor.state === 'HOLD' ? t.motorBusyHold : t.motorBusy;
    // Told in whole minutes, rounded up; while the run ahead is paused it is only a lower bound.
    const minutes = wait != null ? i18n.duration(Math.ceil(wait / 60) * 60) : null;
    const estimate = minutes ? (motor.state === 'HOLD' ? t.waitAtLeast(minutes) : t.waitAbout(minutes)) : null;
    block = (
      <StateBlock
        tone="waiting"
        word={t.stateWaiting}
        detail={mine.position === 1 ? t.waitingNext : mine.position ? t.waitingNumber(i18n.num(mine.position)) : null}
        extra={[estimate, busy].filter(Boolean).join(' · ')}
        asOf={asOf}
      />
    );
  } else if ((own === 'RUNNING' || own === 'HOLD') && isActive(mine)) {
    const held = mine.status === 'HOLD';
    block = (
      <StateBlock
        tone={held ? 'hold' : 'running'}
        word={held ? t.stateHold : t.stateRunning}
        detail={held ? holdWords(mine.holdReason ?? motor.holdReason, t, resume) : left}
        extra={held ? [left, t.yourRunHeld].filter(Boolean).join(' · ') : t.yourRun}
        asOf={asOf}
      />
    );
  } else {
    const motorLine =
      motor.state === 'RUNNING'
        ? [t.motorBusy, left].filter(Boolean).join(' · ')
        : motor.state === 'HOLD'
          ? `${t.motorBusyHold} · ${holdWords(motor.holdReason, t, resume)}`
          : t.motorFree;
    block = <StateBlock tone="idle" word={t.stateIdle} detail={t.notInLine} extra={motorLine} asOf={asOf} />;
  }

  const run = async (what: 'start' | 'stop') => {
    setMessage(null);
    try {
      if (what === 'start') {
        await live.start(limit || undefined);
      } else {
        if (status.me.state === 'WAITING' && !confirmLeave.tap()) return;
        const ended = await live.stop();
        if (ended.endReason === 'LEFT_QUEUE') {
          setMessage({ kind: 'success', text: t.youLeft });
        } else if (ended.status === 'COMPLETED' && ended.availableSeconds != null) {
          setMessage({
            kind: 'success',
            text: t.stopped(i18n.duration(ended.chargedSeconds ?? 0), i18n.duration(ended.availableSeconds)),
          });
        }
      }
    } catch (err) {
      setMessage({ kind: 'error', text: i18n.error(err) });
    }
  };

  const pending = live.pending !== null;
  const busy = motor.state !== 'IDLE';
  // No minutes: START (or JOIN) cannot work, and says why where the farmer looks, at the button.
  const empty = balance <= 0;
  const startLabel = busy ? t.joinQueue : t.start;

  return (
    <Screen testID="home" onRefresh={live.refresh}>
      {block}
      {pending ? <Body muted>{t.sending}</Body> : null}
      {message ? <Message kind={message.kind} text={message.text} testID={`home-${message.kind}`} /> : null}

      {isLive(mine) ? (
        <Button
          big
          kind="danger"
          testID="stop"
          label={
            mine.status === 'WAITING'
              ? confirmLeave.isArmed()
                ? t.leaveAgain(mine.position ? i18n.num(mine.position) : null)
                : t.leaveQueue
              : t.stop
          }
          busy={live.pending === 'stop'}
          disabled={pending}
          onPress={() => void run('stop')}
        />
      ) : (
        <View style={{ gap: 10 }}>
          {empty ? (
            <Message kind="info" text={t.noMinutesStart} testID="no-minutes" />
          ) : (
            <>
              <Body strong>{t.runFor}</Body>
              <Choices
                testID="limit"
                value={limit}
                onChange={setLimit}
                options={LIMITS.map((m) => ({ value: m, label: m ? i18n.minutes(m) : t.untilStopped }))}
              />
            </>
          )}
          <Button
            big
            testID="start"
            label={startLabel}
            accessibilityLabel={empty ? `${startLabel}. ${t.noMinutesStart}` : undefined}
            busy={live.pending === 'start'}
            disabled={pending || empty}
            onPress={() => void run('start')}
          />
        </View>
      )}

      <Card testID="balance">
        <Body muted>{t.yourBalance}</Body>
        <Body strong testID="balance-value">
          {i18n.duration(balance)}
        </Body>
        {/* Out of the line the START button says it; in the line, the turn would be skipped. */}
        {empty && isLive(mine) ? <Body muted>{t.noMinutes}</Body> : null}
      </Card>

      <Card testID="device">
        <Body muted>{t.device}</Body>
        <Fact
          ok={deviceOk(status.device.status)}
          neutral={deviceSwitching(status.device.status)}
          text={deviceWords(status.device.status, t)}
          asOf={asOf}
          testID="device-status"
        />
      </Card>
    </Screen>
  );
}
