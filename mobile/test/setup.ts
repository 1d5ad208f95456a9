// Runs before every test file.
import { configure } from '@testing-library/react-native';

jest.mock('react-native-safe-area-context', () => require('react-native-safe-area-context/jest/mock').default);

// The live event stream's `fetch` (`expo/fetch`, native on a phone) goes to the test's own fake of
// the server, as every other request does.
jest.mock('expo/fetch', () => ({ fetch: (...args: unknown[]) => (globalThis as any).fetch(...args) }));

// The first render of a test file also compiles React Native, which took over 8 s on a cold cache
// with the machine's two cores busy: waits are for what the user would see, with a generous limit
// (a test that never sees it still fails, within the 60 s test timeout).
configure({ asyncUtilTimeout: 30000 });

// The app updates state when (mocked) network answers arrive, outside any act() scope: the tests
// wait for what the user would see instead. React's act() reminder for those is noise here.
const consoleError = console.error;
beforeAll(() => {
  jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('not wrapped in act(')) return;
    consoleError(...args);
  });
});
