// The app's build configuration: app.json, plus the server this build talks to.
//
// PUMPPILOT_SERVER_URL (e.g. https://pump.example.com) is read when the app is built: from the
// shell for `expo start`/`expo export`, or from eas.json's `env` of the build profile. The sign-in
// screen starts with it; a link or QR code from the owner's dashboard, or a typed address, can
// still choose another server.
import type { ConfigContext, ExpoConfig } from 'expo/config';

export default ({ config }: ConfigContext): ExpoConfig => ({
  ...(config as ExpoConfig),
  extra: { ...config.extra, serverUrl: (process.env.PUMPPILOT_SERVER_URL ?? '').trim() },
});
