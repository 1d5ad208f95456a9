import { useEffect, type ReactNode } from 'react';
import {
  AccessibilityInfo,
  ActivityIndicator,
  Platform,
  Pressable,
  RefreshControl,
  ScrollView,
  StyleSheet,
  Text,
  TextInput,
  View,
  type TextInputProps,
} from 'react-native';

import { useI18n } from '../i18n/I18n';
import { colors, size, tone as tones, type Tone } from './theme';

export function Screen({
  title,
  children,
  onRefresh,
  testID,
}: {
  title?: string;
  children: ReactNode;
  onRefresh?: () => void;
  testID?: string;
}) {
  return (
    <ScrollView
      testID={testID}
      style={styles.screen}
      contentContainerStyle={styles.screenContent}
      keyboardShouldPersistTaps="handled"
      refreshControl={onRefresh ? <RefreshControl refreshing={false} onRefresh={onRefresh} /> : undefined}
    >
      {title ? (
        <Text style={styles.title} accessibilityRole="header">
          {title}
        </Text>
      ) : null}
      {children}
    </ScrollView>
  );
}

export function Card({ children, testID }: { children: ReactNode; testID?: string }) {
  return (
    <View style={styles.card} testID={testID}>
      {children}
    </View>
  );
}

export function Heading({ children }: { children: ReactNode }) {
  return (
    <Text style={styles.heading} accessibilityRole="header">
      {children}
    </Text>
  );
}

export function Body({ children, muted, strong, testID }: { children: ReactNode; muted?: boolean; strong?: boolean; testID?: string }) {
  return (
    <Text testID={testID} style={[styles.body, muted && styles.muted, strong && styles.strong]}>
      {children}
    </Text>
  );
}

type ButtonKind = 'primary' | 'danger' | 'neutral' | 'outline';

export function Button({
  label,
  onPress,
  kind = 'primary',
  big,
  disabled,
  busy,
  expanded,
  testID,
  accessibilityLabel,
}: {
  label: string;
  onPress: () => void;
  kind?: ButtonKind;
  big?: boolean;
  disabled?: boolean;
  busy?: boolean;
  /** For a button that shows or hides a part of the screen: whether that part is shown. */
  expanded?: boolean;
  testID?: string;
  accessibilityLabel?: string;
}) {
  const look = buttonLooks[kind];
  const off = disabled || busy;
  return (
    <Pressable
      testID={testID}
      accessibilityRole="button"
      accessibilityLabel={accessibilityLabel ?? label}
      accessibilityState={expanded === undefined ? { disabled: !!off, busy: !!busy } : { disabled: !!off, busy: !!busy, expanded }}
      disabled={off}
      onPress={onPress}
      style={({ pressed }) => [
        styles.button,
        big && styles.bigButton,
        { backgroundColor: look.bg, borderColor: look.border },
        off && styles.disabled,
        pressed && styles.pressed,
      ]}
    >
      {busy ? <ActivityIndicator color={look.fg} style={styles.spinner} /> : null}
      <Text style={[styles.buttonText, big && styles.bigButtonText, { color: look.fg }]}>{label}</Text>
    </Pressable>
  );
}

const buttonLooks: Record<ButtonKind, { bg: string; fg: string; border: string }> = {
  primary: { bg: colors.primary, fg: colors.primaryText, border: colors.primary },
  danger: { bg: colors.danger, fg: colors.dangerText, border: colors.danger },
  neutral: { bg: colors.header, fg: colors.headerText, border: colors.header },
  outline: { bg: colors.background, fg: colors.text, border: colors.text },
};

/**
 * Buttons side by side for choices; the chosen one is filled. `stacked` puts them one under the
 * other, each the full width with a mark (● chosen, ○ not), for choices that are sentences.
 */
export function Choices<T extends string | number>({
  options,
  value,
  onChange,
  stacked,
  testID,
}: {
  options: { value: T; label: string }[];
  value: T;
  onChange: (v: T) => void;
  stacked?: boolean;
  testID?: string;
}) {
  return (
    <View style={stacked ? styles.choicesStacked : styles.choices} testID={testID} accessibilityRole="radiogroup">
      {options.map((o) => {
        const chosen = o.value === value;
        return (
          <Pressable
            key={String(o.value)}
            testID={testID ? `${testID}-${o.value}` : undefined}
            accessibilityRole="radio"
            accessibilityState={{ selected: chosen }}
            onPress={() => onChange(o.value)}
            style={[styles.choice, stacked && styles.choiceStacked, chosen && styles.choiceOn]}
          >
            {/* A long name wraps inside its chip rather than running off a 360 px screen. */}
            <Text style={[styles.choiceText, stacked && styles.choiceTextStacked, chosen && styles.choiceTextOn]}>
              {stacked ? `${chosen ? '●' : '○'}  ${o.label}` : o.label}
            </Text>
          </Pressable>
        );
      })}
    </View>
  );
}

export function Field({ label, testID, ...input }: { label: string; testID?: string } & TextInputProps) {
  return (
    <View style={styles.field}>
      <Text style={styles.label}>{label}</Text>
      <TextInput
        testID={testID}
        accessibilityLabel={label}
        placeholderTextColor={colors.muted}
        style={styles.input}
        {...input}
      />
    </View>
  );
}

export type MessageKind = 'error' | 'success' | 'info';

export function Message({ kind, text, testID }: { kind: MessageKind; text: string; testID?: string }) {
  // Android and the web read a live region when it changes; iOS VoiceOver does not, so there the
  // message is announced (a refusal or "added" read aloud to an owner who cannot see it).
  useEffect(() => {
    if (Platform.OS === 'ios') AccessibilityInfo.announceForAccessibility(text);
  }, [text]);
  const look = kind === 'error' ? styles.error : kind === 'success' ? styles.success : styles.info;
  const fg = kind === 'error' ? colors.errorText : kind === 'success' ? colors.successText : colors.infoText;
  return (
    <View style={[styles.message, look]} testID={testID} accessibilityRole={kind === 'error' ? 'alert' : 'text'} accessibilityLiveRegion="polite">
      <Text style={[styles.messageText, { color: fg }]}>{text}</Text>
    </View>
  );
}

/**
 * The motor state in a word on its colour: RUNNING green, HOLD amber, WAITING blue, IDLE grey.
 * With `asOf` (the server cannot be reached) it is what was known then: greyed, bordered in its
 * colour, and says "As of 11:25 PM" (the caller freezes its countdown).
 */
export function StateBlock({
  tone,
  word,
  detail,
  extra,
  asOf,
  testID = 'state',
}: {
  tone: Tone;
  word: string;
  detail?: string | null;
  extra?: string | null;
  /** The time of the last answer from the server, when it cannot be reached now. */
  asOf?: string | null;
  testID?: string;
}) {
  const { t } = useI18n();
  const look = asOf ? { bg: colors.surface, fg: colors.muted } : tones[tone];
  return (
    <View
      style={[styles.state, { backgroundColor: look.bg }, asOf ? [styles.stale, { borderColor: tones[tone].bg }] : null]}
      testID={testID}
      accessibilityLiveRegion="polite"
    >
      {asOf ? (
        <Text style={[styles.stateAsOf, { color: look.fg }]} testID={`${testID}-as-of`}>
          {t.asOf(asOf)}
        </Text>
      ) : null}
      <Text style={[styles.stateWord, { color: look.fg }]} testID={`${testID}-word`}>
        {word}
      </Text>
      {detail ? (
        <Text style={[styles.stateDetail, { color: look.fg }]} testID={`${testID}-detail`}>
          {detail}
        </Text>
      ) : null}
      {extra ? (
        <Text style={[styles.stateExtra, { color: look.fg }]} testID={`${testID}-extra`}>
          {extra}
        </Text>
      ) : null}
    </View>
  );
}

/** A small coloured tag with a word (never colour alone). */
export function Tag({ tone, word, testID }: { tone: Tone; word: string; testID?: string }) {
  const look = tones[tone];
  return (
    <View style={[styles.tag, { backgroundColor: look.bg }]} testID={testID}>
      <Text style={[styles.tagText, { color: look.fg }]}>{word}</Text>
    </View>
  );
}

/**
 * A fact as a mark and words, e.g. "✓ Power on" / "✕ Power cut". A neutral fact (the relay: off
 * is as normal as on) gets a filled or empty dot instead of good/bad colours.
 */
export function Fact({
  ok,
  text,
  neutral,
  asOf,
  testID,
}: {
  ok: boolean;
  text: string;
  neutral?: boolean;
  /** As StateBlock's: what was known at this time, greyed, when the server cannot be reached. */
  asOf?: string | null;
  testID?: string;
}) {
  const { t } = useI18n();
  const mark = neutral ? (ok ? '●' : '○') : ok ? '✓' : '✕';
  const color = asOf ? colors.line : neutral ? colors.text : ok ? colors.primary : colors.danger;
  return (
    <View style={styles.fact} testID={testID}>
      <Text style={[styles.factMark, { color }]}>{mark}</Text>
      <Text style={[styles.factText, asOf ? styles.factStale : null]}>{asOf ? `${text} · ${t.asOf(asOf)}` : text}</Text>
    </View>
  );
}

export function Loading() {
  const { t } = useI18n();
  return (
    <View style={styles.loading}>
      <ActivityIndicator size="large" color={colors.text} />
      <Body muted>{t.loading}</Body>
    </View>
  );
}

/** An error in words with a retry button; never a crash. */
export function ErrorBox({ error, onRetry, testID = 'error' }: { error: unknown; onRetry?: () => void; testID?: string }) {
  const i18n = useI18n();
  return (
    <View>
      <Message kind="error" text={i18n.error(error)} testID={testID} />
      {onRetry ? <Button kind="outline" label={i18n.t.retry} onPress={onRetry} /> : null}
    </View>
  );
}

export function Divider() {
  return <View style={styles.divider} />;
}

const styles = StyleSheet.create({
  screen: { flex: 1, backgroundColor: colors.background },
  screenContent: { padding: size.pad, paddingBottom: size.pad * 3, gap: 14 },
  title: { fontSize: size.title, fontWeight: '800', color: colors.text },
  heading: { fontSize: 22, fontWeight: '800', color: colors.text, marginTop: 4 },
  card: {
    borderWidth: 2,
    borderColor: colors.line,
    borderRadius: size.radius,
    padding: 14,
    gap: 8,
    backgroundColor: colors.background,
  },
  body: { fontSize: size.body, color: colors.text, lineHeight: 28 },
  muted: { color: colors.muted, fontSize: size.small, lineHeight: 24 },
  strong: { fontWeight: '800' },
  button: {
    minHeight: size.touch,
    borderRadius: size.radius,
    borderWidth: 3,
    paddingHorizontal: 18,
    paddingVertical: 10,
    alignItems: 'center',
    justifyContent: 'center',
    flexDirection: 'row',
  },
  bigButton: { minHeight: size.bigTouch },
  buttonText: { fontSize: size.body, fontWeight: '800', textAlign: 'center' },
  bigButtonText: { fontSize: 28, letterSpacing: 1 },
  disabled: { opacity: 0.45 },
  pressed: { opacity: 0.75 },
  spinner: { marginRight: 10 },
  choices: { flexDirection: 'row', flexWrap: 'wrap', gap: 8 },
  choice: {
    minHeight: 48,
    minWidth: 64,
    maxWidth: '100%',
    flexShrink: 1,
    paddingHorizontal: 14,
    paddingVertical: 6,
    borderRadius: size.radius,
    borderWidth: 2,
    borderColor: colors.text,
    alignItems: 'center',
    justifyContent: 'center',
    backgroundColor: colors.background,
  },
  choicesStacked: { gap: 8 },
  choiceStacked: { minHeight: size.touch, alignItems: 'flex-start', paddingVertical: 10 },
  choiceOn: { backgroundColor: colors.text },
  choiceText: { fontSize: 18, fontWeight: '700', color: colors.text, flexShrink: 1, textAlign: 'center' },
  choiceTextStacked: { textAlign: 'left', lineHeight: 26 },
  choiceTextOn: { color: colors.background },
  field: { gap: 6 },
  label: { fontSize: size.small, fontWeight: '700', color: colors.text },
  input: {
    minHeight: size.touch,
    borderWidth: 2,
    borderColor: colors.text,
    borderRadius: size.radius,
    paddingHorizontal: 14,
    fontSize: size.body,
    color: colors.text,
    backgroundColor: colors.background,
  },
  message: { borderRadius: size.radius, padding: 14, borderWidth: 2 },
  error: { backgroundColor: colors.errorBg, borderColor: colors.errorText },
  success: { backgroundColor: colors.successBg, borderColor: colors.successText },
  info: { backgroundColor: colors.infoBg, borderColor: colors.infoText },
  messageText: { fontSize: size.body, fontWeight: '600', lineHeight: 28 },
  state: { borderRadius: 16, padding: 20, gap: 6, alignItems: 'center' },
  stateWord: { fontSize: size.state, fontWeight: '900', letterSpacing: 1, textAlign: 'center' },
  stateDetail: { fontSize: 28, fontWeight: '800', textAlign: 'center' },
  stateExtra: { fontSize: size.body, fontWeight: '600', textAlign: 'center', lineHeight: 28 },
  stale: { borderWidth: 4, borderStyle: 'dashed' },
  stateAsOf: { fontSize: size.small, fontWeight: '800', textAlign: 'center' },
  tag: { borderRadius: 8, paddingHorizontal: 10, paddingVertical: 4, alignSelf: 'flex-start' },
  tagText: { fontSize: 16, fontWeight: '800' },
  fact: { flexDirection: 'row', alignItems: 'center', gap: 10 },
  factMark: { fontSize: 26, fontWeight: '900', width: 28, textAlign: 'center' },
  factText: { fontSize: size.body, color: colors.text, fontWeight: '600', flexShrink: 1 },
  factStale: { color: colors.muted },
  loading: { padding: 24, alignItems: 'center', gap: 10 },
  divider: { height: 2, backgroundColor: colors.surface, marginVertical: 4 },
});
