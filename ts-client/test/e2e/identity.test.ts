// End-to-end flows that need the identity operations (register, login, refresh_session, logout)
// and a rate limiter. The contract does not have them yet: they are skipped, not faked, and each
// names what it waits for. Unskip them with the identity issue.
import { describe, test } from "node:test";

const WAITS = "TODO(identity issue): the contract has no identity operations yet";

describe("identity (pending)", () => {
  test("register a user, then log in and read the session", { skip: `${WAITS} (register_user, create_session)` }, () => {});
  test("an expired access token is refreshed once and the request replayed", {
    skip: `${WAITS} (refresh_session; needs a short access-token TTL setting)`,
  }, () => {});
  test("a reused refresh token ends the session with unauthenticated", { skip: `${WAITS} (refresh_session)` }, () => {});
  test("logout clears the session and revokes the refresh token", { skip: `${WAITS} (delete_session)` }, () => {});
  test("a validation failure maps to invalid_request with details", {
    skip: `${WAITS} (no operation with a request body to violate)`,
  }, () => {});
  test("a rate-limited login maps to rate_limited with retryAfter", { skip: `${WAITS} (rate limiter on create_session)` }, () => {});
});
