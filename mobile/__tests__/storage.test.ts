import * as SecureStore from 'expo-secure-store';

import { KEYS, deviceStorage } from '../src/storage';

jest.mock('expo-secure-store', () => {
  const data = new Map<string, string>();
  return {
    getItemAsync: jest.fn(async (k: string) => data.get(k) ?? null),
    setItemAsync: jest.fn(async (k: string, v: string) => void data.set(k, v)),
    deleteItemAsync: jest.fn(async (k: string) => void data.delete(k)),
  };
});

test('on a phone the refresh token goes to expo-secure-store', async () => {
  const storage = deviceStorage();
  await storage.secure.set(KEYS.refreshToken, 'r_x');
  expect(SecureStore.setItemAsync).toHaveBeenCalledWith('pumppilot.refreshToken', 'r_x');
  expect(await storage.secure.get(KEYS.refreshToken)).toBe('r_x');
  await storage.secure.remove(KEYS.refreshToken);
  expect(await storage.secure.get(KEYS.refreshToken)).toBeNull();
});

test('keys are ones the secure store accepts', () => {
  for (const key of Object.values(KEYS)) expect(key).toMatch(/^[A-Za-z0-9._-]+$/);
});
