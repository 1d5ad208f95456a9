// Push: this phone's Expo push token, registered as the phone's own with the session signed in
// (`PUT /api/alerts/push-tokens/{token}`: the token lives as long as that session, whatever session
// or account had it before); the server sends through Expo's push API.
import * as Notifications from 'expo-notifications';
import { Platform } from 'react-native';

import type { Api } from '../api/endpoints';

export type PushResult = { ok: true; token: string } | { ok: false; reason: 'denied' };

/** "Notify this phone": asks for permission (once, when the phone still may ask), then registers the token. */
export async function registerForPush(api: Api): Promise<PushResult> {
  let permission = await Notifications.getPermissionsAsync();
  if (!permission.granted && permission.canAskAgain) {
    permission = await Notifications.requestPermissionsAsync();
  }
  if (!permission.granted) return { ok: false, reason: 'denied' };
  const token = (await Notifications.getExpoPushTokenAsync()).data;
  await api.registerPushToken(token);
  return { ok: true, token };
}

/**
 * Registers this phone's token again, asking nothing, when push is on (the phone lets PumpPilot
 * notify): after every sign-in, at every start and when Expo gives the phone a new token, whether or
 * not the profile lists the token already. A phone whose old session lapsed without signing out
 * (the app reinstalled, its storage cleared) lists its token under that session until this moves it
 * to the new one; left there, it would go when the old session is purged, and pushes would stop
 * without a word. Answers the token registered, or null when push is off (and in a browser, which
 * has no Expo push token). Throws what the call throws (`OfflineError`: try again at the next chance).
 */
export async function registerAgain(api: Api): Promise<string | null> {
  if (Platform.OS === 'web') return null;
  const permission = await Notifications.getPermissionsAsync();
  if (!permission?.granted) return null;
  const token = (await Notifications.getExpoPushTokenAsync()).data;
  await api.registerPushToken(token);
  return token;
}

/** Calls `changed` whenever Expo gives this phone a new push token; answers how to stop listening. */
export function onNewPushToken(changed: () => void): () => void {
  try {
    const subscription = Notifications.addPushTokenListener(() => changed());
    return () => subscription?.remove?.();
  } catch {
    // No push on this build (Expo Go on Android): nothing to listen to.
    return () => {};
  }
}
