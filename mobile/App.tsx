import * as Linking from 'expo-linking';
import { fetch as fetchStreaming } from 'expo/fetch';
import { StatusBar } from 'expo-status-bar';
import { useCallback, useMemo } from 'react';
import { ActivityIndicator, StyleSheet, View } from 'react-native';
import { SafeAreaProvider, SafeAreaView } from 'react-native-safe-area-context';

import type { ApiClient } from './src/api/client';
import type { Api } from './src/api/endpoints';
import { AuthProvider, useAuth } from './src/auth/AuthProvider';
import { I18nProvider, type Language } from './src/i18n/I18n';
import { EventStreamFeed, openEvents } from './src/live/events';
import { PollingFeed, type LiveStore } from './src/live/live';
import { LiveProvider, POLL_MS } from './src/live/LiveProvider';
import { watchesMotor } from './src/navigation';
import { LoginScreen } from './src/screens/LoginScreen';
import { parseSignInLink } from './src/server';
import { Shell } from './src/Shell';
import { deviceStorage, type AppStorage } from './src/storage';
import { colors } from './src/ui/theme';

export interface AppProps {
  /** Where tokens and preferences live (tests pass memory). */
  storage?: AppStorage;
  /** How often the motor status is polled while the server's event stream is not there, ms. */
  pollMs?: number;
  language?: Language;
}

export default function App({ storage, pollMs, language }: AppProps) {
  const store = useMemo(() => storage ?? deviceStorage(), [storage]);
  return (
    <SafeAreaProvider>
      <StatusBar style="light" />
      <I18nProvider prefs={store.prefs} initial={language}>
        <AuthProvider storage={store}>
          <Root pollMs={pollMs} />
        </AuthProvider>
      </I18nProvider>
    </SafeAreaProvider>
  );
}

function Root({ pollMs = POLL_MS }: { pollMs?: number }) {
  const { state } = useAuth();
  // The link that opened the app (the owner's QR code): the sign-in screen takes its server.
  const url = Linking.useURL();
  const link = useMemo(() => parseSignInLink(url), [url]);
  if (state.phase === 'loading') {
    return (
      <View style={styles.center}>
        <ActivityIndicator size="large" color={colors.text} />
      </View>
    );
  }
  if (state.phase === 'signedOut') {
    return (
      <SafeAreaView style={styles.page} edges={['top', 'bottom']}>
        <LoginScreen notice={state.notice} link={link} />
      </SafeAreaView>
    );
  }
  if (!watchesMotor(state.user.role)) return <Shell live={false} />;
  return <Live client={state.client} api={state.api} pollMs={pollMs} />;
}

/** The signed-in frame of a farmer or an owner, with the motor's state kept fresh. */
function Live({ client, api, pollMs }: { client: ApiClient; api: Api; pollMs: number }) {
  // Over the server's event stream; polled while the stream is not there.
  const makeFeed = useCallback(
    (store: LiveStore, intervalMs: number) =>
      new EventStreamFeed(store, openEvents(client, fetchStreaming), new PollingFeed(store, intervalMs)),
    [client],
  );
  return (
    <LiveProvider api={api} intervalMs={pollMs} makeFeed={makeFeed}>
      <Shell live />
    </LiveProvider>
  );
}

const styles = StyleSheet.create({
  center: { flex: 1, alignItems: 'center', justifyContent: 'center', backgroundColor: colors.background },
  page: { flex: 1, backgroundColor: colors.background },
});
