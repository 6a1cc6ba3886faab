// Cross-origin access as a real browser enforces it: pages on one origin call the API on another.
// Headless Chromium (Debian's, installed by scripts/install-chromium.sh) driven by playwright-core.
// The server allows exactly one page origin; a page on any other origin must be refused by the
// browser itself, and the allowed page must be able to read answers, errors and their headers.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { freePort, startServer, type RunningServer } from "../e2e/server.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** A page server: every path answers an empty HTML page, so the page's origin is this server's. */
async function pageServer(): Promise<{ origin: string; server: Server }> {
  const port = await freePort();
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>agora cors test</title>");
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${port}`, server };
}

describe("CORS in a browser", () => {
  let api: RunningServer;
  let browser: Browser;
  let allowed: { origin: string; server: Server };
  let refused: { origin: string; server: Server };

  before(async () => {
    allowed = await pageServer();
    refused = await pageServer();
    api = await startServer({ AGORA_HTTP__CORS_ALLOWED_ORIGINS: JSON.stringify([allowed.origin]) });
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });

  after(async () => {
    await browser?.close();
    await api?.stop();
    allowed?.server.close();
    refused?.server.close();
  });

  test("the allowed origin signs up, calls authenticated routes and reads errors", async () => {
    const page = await browser.newPage();
    await page.goto(`${allowed.origin}/`);
    const handle = `cors_${process.pid}`;
    const seen = await page.evaluate(
      async ({ base, handle }) => {
        // JSON bodies and the Authorization header make every call below preflighted.
        const registered = await fetch(`${base}/v1/accounts`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            handle,
            email: `${handle}@example.com`,
            password: `password-of-${handle}`,
            display_name: "Cors",
          }),
        });
        const session = (await registered.json()) as { tokens: { access_token: string } };
        const auth = { authorization: `Bearer ${session.tokens.access_token}` };
        const updated = await fetch(`${base}/v1/me`, {
          method: "PATCH",
          headers: { ...auth, "content-type": "application/json", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
          body: JSON.stringify({ bio: "from the browser" }),
        });
        const me = (await updated.json()) as { bio?: string };
        const anonymous = await fetch(`${base}/v1/me`);
        const error = (await anonymous.json()) as { error_code: string; request_id: string };
        return {
          registered: registered.status,
          updated: updated.status,
          bio: me.bio,
          anonymous: anonymous.status,
          errorCode: error.error_code,
          requestIdHeader: anonymous.headers.get("x-request-id"),
          requestIdBody: error.request_id,
          wwwAuthenticate: anonymous.headers.get("www-authenticate"),
        };
      },
      { base: api.baseUrl, handle },
    );
    assert.equal(seen.registered, 201);
    assert.equal(seen.updated, 200);
    assert.equal(seen.bio, "from the browser");
    assert.equal(seen.anonymous, 401);
    assert.equal(seen.errorCode, "unauthenticated");
    // Exposed headers are readable from script; the id matches the body's.
    assert.equal(seen.requestIdHeader, seen.requestIdBody);
    assert.equal(seen.wwwAuthenticate, "Bearer");
    await page.close();
  });

  test("another origin is refused by the browser, preflighted or not", async () => {
    const page = await browser.newPage();
    await page.goto(`${refused.origin}/`);
    // No named functions inside evaluate: tsx's transform would wrap them in a helper the page
    // does not have.
    const outcomes = await page.evaluate(async (base) => {
      const results: string[] = [];
      for (const init of [{}, { headers: { authorization: "Bearer x" } }]) {
        try {
          const response = await fetch(`${base}/v1/me`, init);
          results.push(`answered ${response.status}`);
        } catch (e) {
          results.push(e instanceof TypeError ? "blocked" : `failed: ${String(e)}`);
        }
      }
      return { simple: results[0], preflighted: results[1] };
    }, api.baseUrl);
    assert.deepEqual(outcomes, { simple: "blocked", preflighted: "blocked" });
    await page.close();
  });
});
