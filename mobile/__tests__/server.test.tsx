// Finding the server: the owner's sign-in link (QR code), the server built into the app, and a
// specific message for each way a typed address can fail.
import { fireEvent, screen, waitFor } from '@testing-library/react-native';
import * as Linking from 'expo-linking';

import { parseSignInLink } from '../src/server';
import { KEYS, memoryStore } from '../src/storage';
import { newServer, renderApp } from '../test/app';
import { BASE, idle } from '../test/fakeServer';

jest.mock('expo-linking', () => ({ useURL: jest.fn(() => null) }));
jest.mock('expo-constants', () => ({ __esModule: true, default: { expoConfig: { extra: { serverUrl: '' } } } }));
const constants = jest.requireMock('expo-constants').default as { expoConfig: { extra: { serverUrl: string } } };
const useURL = Linking.useURL as jest.Mock;

function freshPhone() {
  return { secure: memoryStore(), prefs: memoryStore({ [KEYS.language]: 'en' }) };
}

async function signIn(server: string | null, username: string, password: string) {
  if (server !== null) fireEvent.changeText(await screen.findByTestId('login-server'), server);
  fireEvent.changeText(await screen.findByTestId('login-username'), username);
  fireEvent.changeText(screen.getByTestId('login-password'), password);
  fireEvent.press(screen.getByTestId('login-submit'));
}

afterEach(() => {
  useURL.mockReturnValue(null);
  constants.expoConfig.extra.serverUrl = '';
});

describe('sign-in links', () => {
  test('a link names the server and the username; anything else is no link', () => {
    expect(parseSignInLink('pumppilot://sign-in?server=http%3A%2F%2F192.168.0.10%3A8080&username=01711000001')).toEqual({
      server: 'http://192.168.0.10:8080',
      username: '01711000001',
    });
    expect(parseSignInLink('pumppilot://sign-in?server=pump.example.com&username=')).toEqual({ server: 'http://pump.example.com', username: '' });
    expect(parseSignInLink('pumppilot://sign-in?username=karim')).toBeNull();
    expect(parseSignInLink('pumppilot://sign-in?server=http%3A%2F%2Fa%2Fpath')).toBeNull();
    expect(parseSignInLink('https://evil.example/sign-in?server=x')).toBeNull();
    expect(parseSignInLink(null)).toBeNull();
  });

  test('the app opened from the owner’s code signs in to that server with the username filled in', async () => {
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    useURL.mockReturnValue(`pumppilot://sign-in?server=${encodeURIComponent(BASE)}&username=karim`);
    const phone = freshPhone();
    renderApp(phone);
    expect(await screen.findByText(`Opened from your pump owner's code: ${BASE}. Type your password.`)).toBeTruthy();
    expect(screen.getByTestId('login-server').props.value).toBe(BASE);
    expect(screen.getByTestId('login-username').props.value).toBe('karim');
    fireEvent.changeText(screen.getByTestId('login-password'), 'karim-password');
    fireEvent.press(screen.getByTestId('login-submit'));
    expect(await screen.findByText('IDLE')).toBeTruthy();
    expect(server.fetch.mock.calls[0]![0]).toBe(`${BASE}/api/mobile/login`);
    expect(await phone.prefs.get(KEYS.serverUrl)).toBe(BASE);
  });

  test('a build with a server starts with it; the address can still be typed', async () => {
    constants.expoConfig.extra.serverUrl = 'pump.test:8080/';
    const { server, sessions } = newServer();
    server.on('GET /api/motor/status', sessions.authed({ body: idle() }));
    renderApp(freshPhone());
    await waitFor(() => expect(screen.getByTestId('login-server').props.value).toBe(BASE));
    await signIn(null, 'karim', 'karim-password');
    expect(await screen.findByText('IDLE')).toBeTruthy();
  });
});

describe('a server that cannot be used says why', () => {
  test('nothing answers', async () => {
    const { server } = newServer();
    server.offline = true;
    renderApp(freshPhone());
    await signIn('10.0.0.1:8080', 'karim', 'karim-password');
    expect(await screen.findByText(/Nothing answers at this address/)).toBeTruthy();
    expect(server.calls.map((c) => c.path)).toEqual(['/api/mobile/login', '/healthz']);
  });

  test('the secure connection fails', async () => {
    const { server } = newServer();
    server.fetch.mockImplementation(async () => {
      throw new TypeError('SSL handshake aborted: certificate not trusted');
    });
    renderApp(freshPhone());
    await signIn('https://pump.test', 'karim', 'karim-password');
    expect(await screen.findByText(/The secure connection \(https\) to this address failed/)).toBeTruthy();
  });

  test('another kind of server answers', async () => {
    const { server } = newServer();
    server.on('POST /api/mobile/login', { status: 404, raw: '<html>Not Found</html>' });
    server.on('GET /healthz', { status: 404, raw: '<html>Not Found</html>' });
    renderApp(freshPhone());
    await signIn('192.168.0.1', 'karim', 'karim-password');
    expect(await screen.findByText(/it is not a PumpPilot server/)).toBeTruthy();
  });

  test('a PumpPilot server behind a proxy error is not blamed on the address', async () => {
    const { server } = newServer();
    server.on('POST /api/mobile/login', { status: 502, raw: 'Bad Gateway' });
    server.on('GET /healthz', { raw: 'ok' });
    server.on('GET /api/openapi.json', { body: { info: { title: 'PumpPilot API' } } });
    renderApp(freshPhone());
    await signIn(BASE, 'karim', 'karim-password');
    expect(await screen.findByText(/error 502|502/)).toBeTruthy();
    expect(screen.queryByText(/not a PumpPilot server/)).toBeNull();
  });
});
