import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { Body, Card, ErrorBox, Fact, Loading, Screen, Tag } from '../../ui/components';
import { useResource } from '../../ui/useResource';
import { motorTone, motorWord } from '../../ui/words';
import { AdminOnly } from '../admin/AdminOnly';

/** The master's overview: every pump owner and their motor at a glance. */
export function AdminsScreen() {
  return (
    <AdminOnly allow={['master']}>
      <Admins />
    </AdminOnly>
  );
}

function Admins() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const admins = useResource(api.admins);
  return (
    <Screen title={t.adminsTitle} testID="admins" onRefresh={admins.reload}>
      <Body muted>{t.masterNote}</Body>
      {admins.error ? <ErrorBox error={admins.error} onRetry={admins.reload} /> : null}
      {!admins.data && admins.loading ? <Loading /> : null}
      {admins.data?.length === 0 ? <Body muted>{t.noAdmins}</Body> : null}
      {admins.data?.map((a) => (
        <Card key={a.id} testID={`admin-${a.username}`}>
          <Body strong>{a.name}</Body>
          <Body muted>
            {a.username} · {t.farmers(i18n.num(a.userCount))}
          </Body>
          <Tag tone={motorTone(a.motorState)} word={motorWord(a.motorState, t)} />
          <Fact ok={a.deviceOnline} text={a.deviceOnline ? t.pumpConnected : t.pumpNotConnected} />
          {a.suspended ? <Tag tone="hold" word={t.suspended} /> : null}
        </Card>
      ))}
    </Screen>
  );
}
