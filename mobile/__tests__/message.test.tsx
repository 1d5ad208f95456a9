// A message (an answer, a refusal) is heard, not only seen: iOS VoiceOver does not read a live
// region, so there each new message is announced (this suite runs as iOS); Android and the web
// read the live region.
import { render } from '@testing-library/react-native';
import { AccessibilityInfo } from 'react-native';

import { Message } from '../src/ui/components';

test('each new message is announced once', () => {
  const announce = jest.spyOn(AccessibilityInfo, 'announceForAccessibility').mockImplementation(() => {});
  const view = render(<Message kind="success" text="✓ +20 min added." />);
  view.rerender(<Message kind="success" text="✓ +20 min added." />);
  view.rerender(<Message kind="error" text="No minutes left." />);
  expect(announce.mock.calls).toEqual([['✓ +20 min added.'], ['No minutes left.']]);
  announce.mockRestore();
});
