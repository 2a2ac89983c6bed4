import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** Debian's Chromium (apt-get install chromium; scripts/test-services.sh installs it). */
export const CHROMIUM = process.env.PRISM_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Headless Chromium through puppeteer-core; --no-sandbox because tests run as root here. */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** The text of the first element matching `selector`, white space collapsed ('' when absent). */
export function textOf(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (e) => (e.textContent ?? '').replace(/\s+/g, ' ').trim()).catch(() => '');
}

/** The exact text of the first element matching `selector` (for <pre>). */
export function rawTextOf(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (e) => e.textContent ?? '');
}
