import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { useLive } from '../../live/LiveProvider';
import { Body, Card, ErrorBox, Loading, Screen } from '../../ui/components';
import { useResource } from '../../ui/useResource';

export function HistoryScreen() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const live = useLive();
  // A run that ends changes the caller's entry: load again then.
  const usage = useResource(api.usage, live.status?.me.entry?.id ?? 'none');
  return (
    <Screen title={t.historyTitle} testID="history" onRefresh={usage.reload}>
      {usage.error ? <ErrorBox error={usage.error} onRetry={usage.reload} /> : null}
      {!usage.data && usage.loading ? <Loading /> : null}
      {usage.data?.length === 0 ? <Body muted>{t.noHistory}</Body> : null}
      {usage.data?.map((u) => (
        <Card key={u.entryId} testID={`usage-${u.entryId}`}>
          <Body strong>{i18n.span(u.startedAt, u.endedAt)}</Body>
          <Body>{t.ran(i18n.duration(u.runningSeconds))}</Body>
          {u.heldSeconds > 0 ? <Body>{t.held(i18n.duration(u.heldSeconds))}</Body> : null}
          <Body strong>{t.charged(i18n.duration(u.chargedSeconds))}</Body>
          <Body muted>{t.endReasons[u.endReason] ?? u.endReason}</Body>
        </Card>
      ))}
    </Screen>
  );
}
