import { StyleSheet, Text, View } from 'react-native';

import type { Entry, Queue } from '../api/types';
import { useI18n } from '../i18n/I18n';
import { useCountdown, useLive } from '../live/LiveProvider';
import { useAsOf } from '../ui/useAsOf';
import { Body, Card, Heading, Tag } from '../ui/components';
import { colors } from '../ui/theme';
import { entryTone, entryWord, holdWords } from '../ui/words';

/** The active run and the line behind it; `meId` marks the caller's own entry. */
export function QueueList({ queue, meId, activeActions }: { queue: Queue; meId?: string; activeActions?: React.ReactNode }) {
  const i18n = useI18n();
  const { t } = i18n;
  const name = (e: Entry) => (e.userId === meId ? `${e.userName} (${t.you})` : e.userName);
  return (
    <View style={styles.list}>
      <Heading>{t.nowRunning}</Heading>
      {queue.active ? (
        <Card testID="queue-active">
          <ActiveEntry entry={queue.active} label={name(queue.active)} />
          {activeActions}
        </Card>
      ) : (
        <Body muted>{t.motorIdleNobody}</Body>
      )}
      <Heading>{t.waitingList}</Heading>
      {queue.waiting.length === 0 ? <Body muted>{t.nobodyWaiting}</Body> : null}
      {queue.waiting.map((e) => (
        <Card key={e.id} testID={`queue-waiting-${e.position ?? ''}`}>
          <View style={styles.row}>
            <Text style={styles.position}>{i18n.num(e.position ?? 0)}</Text>
            <View style={styles.grow}>
              <Text style={[styles.name, e.userId === meId && styles.me]}>{name(e)}</Text>
              <Tag tone="waiting" word={t.stateWaiting} />
            </View>
          </View>
        </Card>
      ))}
    </View>
  );
}

function ActiveEntry({ entry, label }: { entry: Entry; label: string }) {
  const i18n = useI18n();
  const { t } = i18n;
  const live = useLive();
  // Offline, the clock stops at what the server last said (`useAsOf`).
  const asOf = useAsOf();
  const remaining = useCountdown(entry.remainingSeconds, live.receivedAt, !asOf && entry.status === 'RUNNING');
  return (
    <View style={styles.active}>
      <Text style={styles.name}>{label}</Text>
      <Tag tone={entryTone(entry)} word={entryWord(entry, t)} />
      {remaining != null ? <Body>{t.timeLeft(i18n.duration(remaining))}</Body> : null}
      {entry.status === 'HOLD' ? <Body>{holdWords(entry.holdReason, t)}</Body> : null}
    </View>
  );
}

const styles = StyleSheet.create({
  list: { gap: 12 },
  row: { flexDirection: 'row', alignItems: 'center', gap: 14 },
  grow: { flex: 1, gap: 6 },
  position: { fontSize: 34, fontWeight: '900', color: colors.waiting, minWidth: 44, textAlign: 'center' },
  name: { fontSize: 22, fontWeight: '800', color: colors.text },
  me: { textDecorationLine: 'underline' },
  active: { gap: 6 },
});
