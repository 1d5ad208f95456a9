import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useQueue } from '../../live/useQueue';
import { ErrorBox, Loading, Screen } from '../../ui/components';
import { QueueList } from '../QueueList';

export function QueueScreen() {
  const { api, user } = useSession();
  const { t } = useI18n();
  const queue = useQueue(api.queue);
  return (
    <Screen title={t.queueTitle} testID="queue" onRefresh={queue.reload}>
      {queue.error ? <ErrorBox error={queue.error} onRetry={queue.reload} /> : null}
      {queue.data ? <QueueList queue={queue.data} meId={user.id} /> : queue.loading ? <Loading /> : null}
    </Screen>
  );
}
