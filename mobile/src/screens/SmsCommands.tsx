import { StyleSheet, Text, View } from 'react-native';

import { Body } from '../ui/components';
import { colors } from '../ui/theme';

/**
 * What a confirmed phone may text, after `intro`: each word in bold, then what it does, one to a
 * line, to be found at a glance (and read out by an owner standing with the farmer).
 */
export function SmsCommands({ intro, commands, testID }: { intro: string; commands: [string, string][]; testID: string }) {
  return (
    <View testID={testID} style={styles.list}>
      <Body muted>{intro}</Body>
      {commands.map(([word, does]) => (
        <Text key={word} style={styles.line}>
          <Text style={styles.word}>{word}</Text> — {does}
        </Text>
      ))}
    </View>
  );
}

const styles = StyleSheet.create({
  list: { gap: 6 },
  line: { fontSize: 16, lineHeight: 22, color: colors.text },
  word: { fontWeight: '800' },
});
