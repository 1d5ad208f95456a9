// Draws the app icons (assets/*.png) from SVG with the local Chromium. Run once after a change:
//   node scripts/icons.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const assets = join(dirname(fileURLToPath(import.meta.url)), '..', 'assets');
const GREEN = '#0B6E2A';
// A water drop over a wave: pumping water.
const drop = (scale) => `
  <g transform="translate(512 512) scale(${scale}) translate(-512 -512)">
    <path d="M512 150 C 512 150 270 450 270 620 A 242 242 0 0 0 754 620 C 754 450 512 150 512 150 Z" fill="#FFFFFF"/>
    <path d="M360 640 Q 436 590 512 640 T 664 640" stroke="${GREEN}" stroke-width="44" fill="none" stroke-linecap="round"/>
  </g>`;
const svg = (background, scale) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="1024" height="1024" viewBox="0 0 1024 1024">${
    background ? `<rect width="1024" height="1024" fill="${background}"/>` : ''
  }${drop(scale)}</svg>`;

const profile = mkdtempSync(join(tmpdir(), 'pumppilot-icons-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] ?? (await context.newPage());
async function draw(file, markup, size) {
  await page.setViewportSize({ width: size, height: size });
  await page.setContent(
    `<html><body style="margin:0;background:transparent">${markup.replace('width="1024" height="1024"', `width="${size}" height="${size}"`)}</body></html>`,
  );
  await page.screenshot({ path: join(assets, file), omitBackground: true });
}
try {
  await draw('icon.png', svg(GREEN, 1), 1024);
  // Android crops adaptive icons to a circle or squircle: keep the drop inside the middle 66%.
  await draw('adaptive-icon.png', svg(null, 0.62), 1024);
  await draw('favicon.png', svg(GREEN, 1), 48);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log('wrote assets/icon.png, assets/adaptive-icon.png, assets/favicon.png');
