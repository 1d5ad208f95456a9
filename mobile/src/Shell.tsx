import { useEffect, useState } from 'react';
import { BackHandler, Pressable, StyleSheet, Text, View } from 'react-native';
import { SafeAreaView } from 'react-native-safe-area-context';

import { useAuth, useSession } from './auth/AuthProvider';
import { useI18n } from './i18n/I18n';
import { useLive } from './live/LiveProvider';
import { tabsFor } from './navigation';
import { colors } from './ui/theme';

/** The signed-in frame: header, offline banner, the current screen, and the tab bar. */
export function Shell({ live }: { live: boolean }) {
  const { user } = useSession();
  const { signOut } = useAuth();
  const i18n = useI18n();
  const { t } = i18n;
  const tabs = tabsFor(user.role);
  const [current, setCurrent] = useState(tabs[0]!.id);
  const tab = tabs.find((x) => x.id === current) ?? tabs[0]!;
  const [leaving, setLeaving] = useState(false);

  // Android's back button goes to the first tab before it leaves the app.
  useEffect(() => {
    const sub = BackHandler.addEventListener('hardwareBackPress', () => {
      if (current === tabs[0]!.id) return false;
      setCurrent(tabs[0]!.id);
      return true;
    });
    return () => sub.remove();
  }, [current, tabs]);

  return (
    <SafeAreaView style={styles.frame} edges={['top', 'bottom']}>
      <View style={styles.header}>
        <View style={styles.who}>
          <Text style={styles.brand}>{t.appName}</Text>
          <Text style={styles.user} numberOfLines={1} testID="header-user">
            {user.name}
          </Text>
        </View>
        <HeaderButton label={t.switchLanguage} accessibilityLabel={t.switchLanguageLabel} testID="language" onPress={i18n.toggleLanguage} />
        <HeaderButton
          label={t.signOut}
          testID="sign-out"
          disabled={leaving}
          onPress={() => {
            setLeaving(true);
            void signOut();
          }}
        />
      </View>
      {live ? <OfflineBanner /> : null}
      <View style={styles.body}>
        <tab.Screen key={tab.id} />
      </View>
      <View style={styles.tabs} accessibilityRole="tablist">
        {tabs.map((x) => {
          const on = x.id === tab.id;
          const label = x.label(t);
          // Each tab as wide as its word, and what is left shared out: six whole words fit a
          // 360 px phone ("Requests" needs more room than "Pump"), where equal shares, or shares
          // by the number of letters, cut the wider ones off.
          return (
            <Pressable
              key={x.id}
              testID={`tab-${x.id}`}
              accessibilityRole="tab"
              accessibilityState={{ selected: on }}
              onPress={() => setCurrent(x.id)}
              style={[styles.tab, on && styles.tabOn]}
            >
              <Text
                style={[styles.tabText, tabs.length > 4 && styles.tabTextSmall, tabs.length > 5 && styles.tabTextSmaller, on && styles.tabTextOn]}
                numberOfLines={1}
              >
                {label}
              </Text>
            </Pressable>
          );
        })}
      </View>
    </SafeAreaView>
  );
}

function HeaderButton(props: { label: string; onPress: () => void; testID: string; accessibilityLabel?: string; disabled?: boolean }) {
  return (
    <Pressable
      testID={props.testID}
      accessibilityRole="button"
      accessibilityLabel={props.accessibilityLabel ?? props.label}
      disabled={props.disabled}
      onPress={props.onPress}
      style={({ pressed }) => [styles.headerButton, pressed && { opacity: 0.7 }]}
    >
      <Text style={styles.headerButtonText}>{props.label}</Text>
    </Pressable>
  );
}

function OfflineBanner() {
  const live = useLive();
  const i18n = useI18n();
  if (live.connection !== 'offline') return null;
  return (
    <View style={styles.offline} testID="offline-banner" accessibilityRole="alert">
      <Text style={styles.offlineText}>{i18n.t.offline}</Text>
      {live.lastContact ? <Text style={styles.offlineSmall}>{i18n.t.offlineSince(i18n.time(live.lastContact))}</Text> : null}
    </View>
  );
}

const styles = StyleSheet.create({
  frame: { flex: 1, backgroundColor: colors.header },
  header: {
    flexDirection: 'row',
    alignItems: 'center',
    gap: 8,
    paddingHorizontal: 12,
    paddingVertical: 8,
    backgroundColor: colors.header,
  },
  who: { flex: 1 },
  brand: { color: colors.headerText, fontSize: 20, fontWeight: '900' },
  user: { color: colors.headerText, fontSize: 16 },
  headerButton: {
    minHeight: 48,
    paddingHorizontal: 12,
    borderRadius: 10,
    borderWidth: 2,
    borderColor: colors.headerText,
    justifyContent: 'center',
  },
  headerButtonText: { color: colors.headerText, fontSize: 17, fontWeight: '800' },
  offline: { backgroundColor: colors.offline, paddingHorizontal: 14, paddingVertical: 10 },
  offlineText: { color: colors.offlineText, fontSize: 19, fontWeight: '800' },
  offlineSmall: { color: colors.offlineText, fontSize: 16 },
  body: { flex: 1, backgroundColor: colors.background },
  tabs: { flexDirection: 'row', backgroundColor: colors.header, borderTopWidth: 2, borderTopColor: colors.header },
  tab: { flexBasis: 'auto', flexGrow: 1, flexShrink: 1, minHeight: 64, minWidth: 48, alignItems: 'center', justifyContent: 'center', paddingHorizontal: 3 },
  tabOn: { backgroundColor: colors.background },
  tabText: { color: colors.headerText, fontSize: 17, fontWeight: '800' },
  tabTextSmall: { fontSize: 15 },
  tabTextSmaller: { fontSize: 14 },
  tabTextOn: { color: colors.text },
});
