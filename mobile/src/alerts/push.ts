// Push registration: asks the phone for permission, gets its Expo push token and adds it to the
// caller's alert profile (the server sends through Expo's push API).
import * as Notifications from 'expo-notifications';

import type { Api } from '../api/endpoints';

export type PushResult = { ok: true; token: string } | { ok: false; reason: 'denied' };

export async function registerForPush(api: Api): Promise<PushResult> {
  let permission = await Notifications.getPermissionsAsync();
  if (!permission.granted && permission.canAskAgain) {
    permission = await Notifications.requestPermissionsAsync();
  }
  if (!permission.granted) return { ok: false, reason: 'denied' };
  const token = (await Notifications.getExpoPushTokenAsync()).data;
  const profile = await api.alertProfile();
  if (!profile.pushTokens.includes(token)) {
    await api.setAlertProfile({ ...profile, pushTokens: [...profile.pushTokens, token].slice(-10) });
  }
  return { ok: true, token };
}
