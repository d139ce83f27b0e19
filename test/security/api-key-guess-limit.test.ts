import { TEST_RETURN_ORIGIN } from '../helpers/broker-harness';
import { useBrokerOnRedis } from '../helpers/broker-fixture';
import { TestBrowser } from '../helpers/browser';
import { hiddenField, useProvidersFiles } from '../helpers/providers-file';

const MAX_REFUSED = 5;

/**
 * One connect link must not be an oracle for guessing keys against the provider's `verify_url`:
 * the 5th refused key uses the flow up, and nothing sent afterwards reaches `verify_url`, however
 * the submissions are timed.
 */
describe('API-key form: refused keys are capped per flow', () => {
  const files = useProvidersFiles('key-guesses');
  const t = useBrokerOnRedis(
    (fakeUrl) => ({
      PROVIDERS_FILE: files.write([
        {
          id: 'keyed',
          auth_mode: 'api_key',
          api_key: { header: 'X-API-KEY', verify_url: `${fakeUrl}/verify` },
        },
      ]),
      PROVIDER_TIMEOUT: '1',
    }),
    {},
    { jobber: false },
  );
  let n = 0;

  const verifications = (): number => t.fake.requests.filter((r) => r.path === '/verify').length;

  async function openForm(connectionId: string) {
    const browser = new TestBrowser();
    const link = await t.broker.connectLink('keyed', connectionId, {
      return_to: `${TEST_RETURN_ORIGIN}/integrations`,
    });
    const page = await browser.get(link);
    expect(page.status).toBe(200);
    const fields = { flow: hiddenField(page.body, 'flow'), csrf: hiddenField(page.body, 'csrf') };
    const submit = (apiKey: string) =>
      browser.postForm(`${t.broker.publicUrl}/auth/keyed`, { ...fields, api_key: apiKey });
    return { browser, submit };
  }

  it('uses the flow up at the 5th refused key, and refuses later keys without calling verify_url', async () => {
    const id = `guess-${++n}`;
    const form = await openForm(id);
    const before = verifications();
    for (let i = 1; i < MAX_REFUSED; i++) {
      const res = await form.submit(`bad-key-${i}`);
      expect(res.status).toBe(400);
      expect(res.body).toContain('did not accept this key');
    }
    const fifth = await form.submit(`bad-key-${MAX_REFUSED}`);
    expect(fifth.status).toBe(400);
    expect(fifth.body).not.toContain('<form');
    expect(fifth.body).toMatch(/start connecting again/i);
    expect(verifications() - before).toBe(MAX_REFUSED);

    // A right key now changes nothing: refused, never checked, never stored.
    const late = await form.submit('good-key-too-late');
    expect(late.status).toBe(400);
    expect(late.body).not.toContain('<form');
    expect(verifications() - before).toBe(MAX_REFUSED);
    expect((await t.broker.api(`/internal/connections/keyed/${id}`)).status).toBe(404);
  });

  it('lets a right key through after fewer than 5 refusals', async () => {
    const id = `guess-${++n}`;
    const form = await openForm(id);
    for (let i = 1; i < MAX_REFUSED; i++) expect((await form.submit(`bad-key-${i}`)).status).toBe(400);
    expect((await form.submit('good-key-in-time')).status).toBe(303);
    expect((await t.broker.api(`/internal/connections/keyed/${id}`)).status).toBe(200);
  });

  it('does not count a key check that failed (502) as a refusal', async () => {
    const id = `guess-${++n}`;
    const form = await openForm(id);
    for (let i = 1; i <= MAX_REFUSED + 1; i++)
      expect((await form.submit(`broken-key-${i}`)).status).toBe(502);
    for (let i = 1; i < MAX_REFUSED; i++) expect((await form.submit(`bad-key-${i}`)).status).toBe(400);
    expect((await form.submit('good-key-after-outage')).status).toBe(303);
  });

  it('lets at most 5 keys of one flow reach verify_url when 20 are sent at once', async () => {
    const id = `guess-${++n}`;
    const form = await openForm(id);
    const before = verifications();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => form.submit(`bad-key-burst-${i}`)),
    );
    expect(answers.every((a) => a.status === 400)).toBe(true);
    expect(verifications() - before).toBeLessThanOrEqual(MAX_REFUSED);
    expect((await form.submit('good-key-after-burst')).status).toBe(400);
    expect(verifications() - before).toBeLessThanOrEqual(MAX_REFUSED);
    expect((await t.broker.api(`/internal/connections/keyed/${id}`)).status).toBe(404);
  });
});
