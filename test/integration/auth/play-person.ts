/** A fetch that keeps cookies between requests and never follows redirects by itself, like a browser tab driven step by step. */
export function cookieClient(): (url: string, form?: Record<string, string>) => Promise<Response> {
  const jar = new Map<string, string>();
  return async (url, form) => {
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
}

/**
 * Plays the person in a device login against the dev IdP over plain HTTP: enters the user code,
 * confirms, signs in as `login`, consents (or aborts).
 */
export async function approveDeviceCode(
  verificationUri: string,
  userCode: string,
  login: string,
  options: { deny?: boolean } = {},
): Promise<void> {
  const request = cookieClient();
  /** Follows redirects; returns the final page and its address. */
  const settle = async (url: string, res: Response): Promise<{ url: string; body: string }> => {
    while (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url).toString();
      res = await request(url);
    }
    if (res.status >= 400) throw new Error(`the IdP answered ${res.status} at ${url}`);
    return { url, body: await res.text() };
  };
  const xsrfOf = (html: string) => /name="xsrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const xsrf = xsrfOf(await (await request(verificationUri)).text());
  const confirmPage = await (await request(verificationUri, { xsrf, user_code: userCode })).text();
  const decision: Record<string, string> = options.deny ? { abort: 'yes' } : { confirm: 'yes' };
  let page = await settle(
    verificationUri,
    await request(verificationUri, { xsrf: xsrfOf(confirmPage), user_code: userCode, ...decision }),
  );
  for (let step = 0; step < 4; step++) {
    const prompt = /name="prompt" value="(\w+)"/.exec(page.body)?.[1];
    if (!prompt) return;
    const form: Record<string, string> = prompt === 'login' ? { prompt, login, password: 'dev' } : { prompt };
    page = await settle(page.url, await request(page.url, form));
  }
  throw new Error('the IdP kept asking');
}
