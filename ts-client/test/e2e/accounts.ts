// Accounts for the end-to-end tests: a new signed-in user per call, with a handle unique to this
// process.
import { createAgoraClient, memoryTokenStore, orThrow, type AgoraClient, type Schema } from "../../src/index.js";

let handles = 0;

/** A signed-in client for a new account whose handle starts with `prefix`. */
export async function signedIn(baseUrl: string, prefix: string): Promise<{ client: AgoraClient; user: Schema<"Me"> }> {
  handles += 1;
  const handle = `${prefix}_${process.pid}_${handles}`;
  const client = createAgoraClient({ baseUrl, tokens: memoryTokenStore() });
  const session = await orThrow(
    client.POST("/v1/accounts", {
      body: { handle, email: `${handle}@example.com`, password: `password-of-${handle}`, display_name: handle },
    }),
  );
  await client.tokens.setTokens({
    accessToken: session.tokens.access_token,
    refreshToken: session.tokens.refresh_token,
  });
  return { client, user: session.user };
}
