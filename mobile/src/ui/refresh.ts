// How often a screen reads again what moves without a live event (its own module, so a test can
// run it on a shorter clock).

/** The pump screen's devices, while one of them is offered an update or downloading it. */
export const DEVICE_UPDATE_REFRESH_MS = 10_000;
