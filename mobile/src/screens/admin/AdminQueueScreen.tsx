import { useState } from 'react';

import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useLive } from '../../live/LiveProvider';
import { ErrorBox, Loading, Message, Screen } from '../../ui/components';
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
    </Screen>
  );
}
