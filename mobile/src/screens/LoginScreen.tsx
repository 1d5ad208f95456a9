import { useEffect, useState } from 'react';
import { StyleSheet, Text, View } from 'react-native';

import { useAuth, type Notice } from '../auth/AuthProvider';
import { builtInServerUrl, type SignInLink } from '../server';
import { useI18n } from '../i18n/I18n';
import { Body, Button, Field, Message, Screen } from '../ui/components';
import { colors } from '../ui/theme';

/**
 * Signing in. The server comes from a sign-in link (the owner's QR code), else the last one used
 * here, else the one built into the app; typing one stays possible.
 */
export function LoginScreen({ notice, link }: { notice?: Notice; link?: SignInLink | null }) {
  const { signIn, remembered } = useAuth();
  const i18n = useI18n();
  const { t } = i18n;
  const [server, setServer] = useState(link?.server || remembered.serverUrl || builtInServerUrl());
  const [username, setUsername] = useState(remembered.username);
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  // The remembered values arrive a moment after the first render.
  useEffect(() => {
    setServer((s) => s || remembered.serverUrl);
    setUsername((u) => u || remembered.username);
  }, [remembered]);

  // A link opened now wins over anything remembered.
  useEffect(() => {
    if (!link) return;
    setServer(link.server);
    if (link.username) setUsername(link.username);
    setError(null);
  }, [link]);

  const submit = async () => {
    if (!server.trim()) return setError(t.needServer);
    if (!username.trim() || !password) return setError(t.needCredentials);
    setBusy(true);
    setError(null);
    try {
      await signIn(server, username, password);
    } catch (err) {
      setError(i18n.error(err));
      setBusy(false);
    }
  };

  let noticeText: string | null = null;
  if (notice?.kind === 'sessionEnded') noticeText = notice.code === 'ACCOUNT_SUSPENDED' ? t.errors.ACCOUNT_SUSPENDED! : t.sessionEnded;
  if (notice?.kind === 'signedOutOffline') noticeText = t.signedOutOffline;

  return (
    <Screen testID="login">
      <View style={styles.top}>
        <Text style={styles.brand}>{t.appName}</Text>
        <Button kind="outline" label={t.switchLanguage} accessibilityLabel={t.switchLanguageLabel} testID="language" onPress={i18n.toggleLanguage} />
      </View>
      <Text style={styles.title} accessibilityRole="header">
        {t.signInTitle}
      </Text>
      {noticeText ? <Message kind="info" text={noticeText} testID="login-notice" /> : null}
      {link ? <Message kind="info" text={t.linkOpened(link.server)} testID="login-link" /> : null}
      <Field
        testID="login-server"
        label={t.serverAddress}
        value={server}
        onChangeText={setServer}
        placeholder="192.168.0.10:8080"
        autoCapitalize="none"
        autoCorrect={false}
        keyboardType="url"
        inputMode="url"
      />
      <Body muted>{t.serverHint}</Body>
      <Field
        testID="login-username"
        label={t.username}
        value={username}
        onChangeText={setUsername}
        autoCapitalize="none"
        autoCorrect={false}
        autoComplete="username"
        textContentType="username"
      />
      <Field
        testID="login-password"
        label={t.password}
        value={password}
        onChangeText={setPassword}
        secureTextEntry
        autoComplete="password"
        textContentType="password"
        onSubmitEditing={() => void submit()}
      />
      {error ? <Message kind="error" text={error} testID="login-error" /> : null}
      <Button big testID="login-submit" label={busy ? t.signingIn : t.signIn} busy={busy} onPress={() => void submit()} />
    </Screen>
  );
}

const styles = StyleSheet.create({
  top: { flexDirection: 'row', justifyContent: 'space-between', alignItems: 'center', gap: 12 },
  brand: { fontSize: 30, fontWeight: '900', color: colors.primary },
  title: { fontSize: 26, fontWeight: '800', color: colors.text },
});
