import { useState } from 'react';

import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useCountdown, useLive } from '../../live/LiveProvider';
import { Body, Card, ErrorBox, Fact, Heading, Loading, Message, Screen, StateBlock } from '../../ui/components';
import { useResource } from '../../ui/useResource';
import { deviceOk, deviceWords, holdWords, motorTone, motorWord } from '../../ui/words';
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
  const devices = useResource(api.devices, live.version);
  const queue = useResource(api.queue, live.version);
  const [message, setMessage] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const motor = live.status?.motor;
  const remaining = useCountdown(motor?.remainingSeconds, live.receivedAt, motor?.state === 'RUNNING');

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
      ? [holdWords(motor.holdReason, t), remaining != null ? t.timeLeft(i18n.duration(remaining)) : null]
          .filter(Boolean)
          .join(' · ')
      : remaining != null && motor?.state === 'RUNNING'
        ? t.timeLeft(i18n.duration(remaining))
        : null;

  return (
    <Screen title={t.pumpTitle} testID="pump" onRefresh={reload}>
      {motor ? (
        <StateBlock tone={motorTone(motor.state)} word={motorWord(motor.state, t)} detail={detail} extra={extra} />
      ) : live.connection === 'connecting' ? (
        <Loading />
      ) : null}
      {message ? <Message kind={message.kind} text={message.text} testID={`pump-${message.kind}`} /> : null}
      {motor && motor.state !== 'IDLE' ? <StopRunButton name={who} onDone={setMessage} /> : null}

      <Heading>{t.device}</Heading>
      {live.status ? (
        <Fact ok={deviceOk(live.status.device.status)} text={deviceWords(live.status.device.status, t)} testID="device-status" />
      ) : null}
      {devices.error ? <ErrorBox error={devices.error} onRetry={devices.reload} /> : null}
      {devices.data?.length === 0 ? <Body muted>{t.noDevice}</Body> : null}
      {devices.data?.map((d) => (
        <Card key={d.id} testID={`device-${d.id}`}>
          <Body strong>{d.name}</Body>
          <Body muted>{d.lastSeenAt ? t.lastSeen(i18n.dateTime(d.lastSeenAt)) : t.neverSeen}</Body>
        </Card>
      ))}
    </Screen>
  );
}
