import { useCallback, useEffect, useState } from 'react';

import type { AdminSummary } from '../../api/types';
import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { cashCounted } from '../../receipt';
import { Body, Button, Card, ErrorBox, Fact, Heading, Loading, Screen, Tag } from '../../ui/components';
import { fortnightStart } from '../../ui/period';
import { useResource } from '../../ui/useResource';
import { entryTone, entryWord, motorTone, motorWord } from '../../ui/words';
import { AdminOnly } from '../admin/AdminOnly';
import { PasswordSection } from '../ChangePasswordCard';

/** The master's overview: every pump owner at a glance, a page at a time (by username), their
 *  totals, and any pump opened. */
export function AdminsScreen() {
  return (
    <AdminOnly allow={['master']}>
      <Admins />
    </AdminOnly>
  );
}

/** The pages loaded after the first (a refresh starts again from the first). */
interface More {
  admins: AdminSummary[];
  next: string | null;
}

function Admins() {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const first = useCallback(() => api.admins(), [api]);
  const admins = useResource(first);
  // Every pump's figures, whatever page of owners is loaded.
  const loadTotals = useCallback(() => api.totals(), [api]);
  const totals = useResource(loadTotals);
  const refresh = useCallback(async () => {
    await Promise.all([admins.reload(), totals.reload()]);
  }, [admins, totals]);
  const [more, setMore] = useState<More | null>(null);
  const [moreBusy, setMoreBusy] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(null);
  const [open, setOpen] = useState<string | null>(null);
  // A new first page (a refresh) drops the pages loaded after the old one.
  useEffect(() => {
    setMore(null);
    setMoreError(null);
  }, [admins.data]);
  const all = [...(admins.data?.admins ?? []), ...(more?.admins ?? [])];
  const next = more ? more.next : (admins.data?.next ?? null);
  const loadMore = async () => {
    if (!next) return;
    setMoreBusy(true);
    try {
      const page = await api.admins(next);
      setMore({ admins: [...(more?.admins ?? []), ...page.admins], next: page.next ?? null });
      setMoreError(null);
    } catch (err) {
      setMoreError(err);
    } finally {
      setMoreBusy(false);
    }
  };
  return (
    <Screen title={t.adminsTitle} testID="admins" onRefresh={refresh}>
      {/* The master has no Alerts tab: their own password is changed here, above the owners. */}
      <PasswordSection />
      {totals.data && totals.data.owners > 0 ? (
        <Card testID="totals">
          <Body strong>{t.totalsTitle}</Body>
          <Body>{t.totalOwners(i18n.num(totals.data.owners))}</Body>
          <Body>{t.farmers(i18n.num(totals.data.farmers))}</Body>
          <Body>{t.totalRunning(i18n.num(totals.data.running))}</Body>
          <Body>{t.totalOnHold(i18n.num(totals.data.onHold))}</Body>
          <Body>{t.totalPumped30(i18n.duration(totals.data.chargedSeconds))}</Body>
          <Body>{t.totalCash30(i18n.num(totals.data.cashTaka))}</Body>
        </Card>
      ) : null}
      {totals.error ? <ErrorBox error={totals.error} onRetry={totals.reload} /> : null}
      <Body muted>{t.masterNote}</Body>
      {admins.error ? <ErrorBox error={admins.error} onRetry={admins.reload} /> : null}
      {!admins.data && admins.loading ? <Loading /> : null}
      {admins.data && all.length === 0 ? <Body muted>{t.noAdmins}</Body> : null}
      {all.map((a) => (
        <Card key={a.id} testID={`admin-${a.username}`}>
          <Body strong>{a.name}</Body>
          <Body muted>
            {a.username} · {t.farmers(i18n.num(a.userCount))}
          </Body>
          <Tag tone={motorTone(a.motorState)} word={motorWord(a.motorState, t)} />
          <Fact ok={a.deviceOnline} text={a.deviceOnline ? t.pumpConnected : t.pumpNotConnected} />
          {a.suspended ? <Tag tone="hold" word={t.suspended} /> : null}
          <Button
            kind="outline"
            testID={`admin-${a.username}-open`}
            label={open === a.id ? t.closePump : t.openPump}
            onPress={() => setOpen(open === a.id ? null : a.id)}
          />
          {open === a.id ? <PumpOf admin={a} /> : null}
        </Card>
      ))}
      {moreError ? <ErrorBox error={moreError} onRetry={() => void loadMore()} /> : null}
      {next ? <Button kind="outline" testID="admins-more" label={t.moreAdmins} busy={moreBusy} onPress={() => void loadMore()} /> : null}
    </Screen>
  );
}

/** One pump, read-only: its queue, its farmers with their balances, its last 14 days. */
function PumpOf({ admin }: { admin: AdminSummary }) {
  const { api } = useSession();
  const i18n = useI18n();
  const { t } = i18n;
  const load = useCallback(() => api.pumpOf(admin.id, fortnightStart()), [api, admin.id]);
  const pump = useResource(load);
  if (pump.error) return <ErrorBox error={pump.error} onRetry={pump.reload} />;
  if (!pump.data) return <Loading />;
  const { queue, users, usage, receipts } = pump.data;
  const pumped = usage.reduce((n, u) => n + u.chargedSeconds, 0);
  const cash = receipts.reduce((n, r) => n + cashCounted(r), 0);
  return (
    <>
      <Body testID={`pump-${admin.username}-usage`}>{t.pumpUsage(i18n.duration(pumped), i18n.num(cash))}</Body>
      <Heading>{t.tabQueue}</Heading>
      {/* A snapshot, not live: the master watches no motor of its own. */}
      {queue.active ? (
        <Body testID={`pump-${admin.username}-active`}>{queue.active.userName}</Body>
      ) : (
        <Body muted>{t.motorIdleNobody}</Body>
      )}
      {queue.active ? <Tag tone={entryTone(queue.active)} word={entryWord(queue.active, t)} /> : null}
      {queue.waiting.map((e) => (
        <Body key={e.id} testID={`pump-${admin.username}-waiting-${e.position ?? 0}`}>{`#${i18n.num(e.position ?? 0)} ${e.userName}`}</Body>
      ))}
      <Heading>{t.usersTitle}</Heading>
      {users.length === 0 ? <Body muted>{t.noUsers}</Body> : null}
      {users.map((u) => (
        <Body key={u.id} testID={`pump-${admin.username}-user-${u.username}`}>
          {`${u.name}: ${i18n.duration(u.availableSeconds)}`}
        </Body>
      ))}
    </>
  );
}
