// Printing a page of HTML in a browser (the app's web build): expo-print's web side prints the
// window, which would print the app around the receipt, so the page goes into a frame of its own
// and that frame prints. The frame stays, out of sight, until the next print replaces it.
const FRAME_ID = 'pumppilot-print';

/** Opens the browser's print dialog for `html`. */
export async function printHtml(html: string): Promise<void> {
  document.getElementById(FRAME_ID)?.remove();
  const frame = document.createElement('iframe');
  frame.id = FRAME_ID;
  frame.title = 'print';
  frame.setAttribute('aria-hidden', 'true');
  Object.assign(frame.style, { position: 'fixed', right: '0', bottom: '0', width: '0', height: '0', border: '0' });
  const loaded = new Promise<void>((resolve) => frame.addEventListener('load', () => resolve(), { once: true }));
  frame.srcdoc = html;
  document.body.appendChild(frame);
  await loaded;
  const view = frame.contentWindow;
  if (!view) throw new Error('no frame to print from');
  view.focus();
  view.print();
}
