import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useLive } from '../../live/LiveProvider';
import { ErrorBox, Loading, Screen } from '../../ui/components';
import { useResource } from '../../ui/useResource';
import { QueueList } from '../QueueList';

export function QueueScreen() {
  const { api, user } = useSession();
  const { t } = useI18n();
  const live = useLive();
  const queue = useResource(api.queue, live.version);
  return (
    <Screen title={t.queueTitle} testID="queue" onRefresh={queue.reload}>
      {queue.error ? <ErrorBox error={queue.error} onRetry={queue.reload} /> : null}
      {queue.data ? <QueueList queue={queue.data} meId={user.id} /> : queue.loading ? <Loading /> : null}
    </Screen>
  );
}
