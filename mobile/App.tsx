import * as Linking from 'expo-linking';
import { StatusBar } from 'expo-status-bar';
import { useMemo } from 'react';
import { ActivityIndicator, StyleSheet, View } from 'react-native';
import { SafeAreaProvider, SafeAreaView } from 'react-native-safe-area-context';

import { AuthProvider, useAuth } from './src/auth/AuthProvider';
import { I18nProvider, type Language } from './src/i18n/I18n';
import { LiveProvider } from './src/live/LiveProvider';
import { watchesMotor } from './src/navigation';
import { LoginScreen } from './src/screens/LoginScreen';
import { parseSignInLink } from './src/server';
import { Shell } from './src/Shell';
import { deviceStorage, type AppStorage } from './src/storage';
import { colors } from './src/ui/theme';

export interface AppProps {
  /** Where tokens and preferences live (tests pass memory). */
  storage?: AppStorage;
  /** How often the motor status is polled, ms. */
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

function Root({ pollMs }: { pollMs?: number }) {
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
  return (
    <LiveProvider api={state.api} intervalMs={pollMs}>
      <Shell live />
    </LiveProvider>
  );
}

const styles = StyleSheet.create({
  center: { flex: 1, alignItems: 'center', justifyContent: 'center', backgroundColor: colors.background },
  page: { flex: 1, backgroundColor: colors.background },
});
