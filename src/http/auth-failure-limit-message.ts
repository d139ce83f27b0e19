/**
 * The detail of the 429 an address gets once its failed internal-API authentications pass the
 * limit. It says what was counted, so a caller with a wrong key fixes the key rather than retrying
 * it (each retry with the same key is one more failure).
 */
export function authFailureLimitMessage(limitPerMinute: number): string {
  return (
    `Too many failed authentications from this address: each request with a missing or wrong internal ` +
    `API key was counted, and past ${limitPerMinute} in a minute they answer 429 instead of 401. This ` +
    `request's key is missing or wrong too; requests with a valid key are not held back. Send one of the ` +
    `broker's INTERNAL_API_KEYS as "Authorization: Bearer <key>"; the count clears after Retry-After seconds.`
  );
}
