// Runs before every test file.
import { configure } from '@testing-library/react-native';

jest.mock('react-native-safe-area-context', () => require('react-native-safe-area-context/jest/mock').default);

// The first render of a test file also compiles React Native: give it time on a slow machine.
configure({ asyncUtilTimeout: 8000 });

// The app updates state when (mocked) network answers arrive, outside any act() scope: the tests
// wait for what the user would see instead. React's act() reminder for those is noise here.
const consoleError = console.error;
beforeAll(() => {
  jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('not wrapped in act(')) return;
    consoleError(...args);
  });
});
