import { withQuery } from '../../../src/http/return-to';

describe('withQuery (the callback outcome added to return_to)', () => {
  const outcome = { connected: 'jobber', connection_id: 'a.B_9:x@y-z' };

  it("keeps the app's query byte for byte and appends the outcome before the fragment", () => {
    expect(withQuery('https://app.example.com/x?tab=a%20b&flag&q=a+b#top', outcome)).toBe(
      'https://app.example.com/x?tab=a%20b&flag&q=a+b&connected=jobber&connection_id=a.B_9%3Ax%40y-z#top',
    );
  });

  it('adds a query where there was none, or only an empty one', () => {
    for (const url of ['https://app.example.com/x', 'https://app.example.com/x?']) {
      expect(withQuery(url, { error: 'access_denied' })).toBe(
        'https://app.example.com/x?error=access_denied',
      );
    }
  });

  it('drops a parameter of the same name the app left in return_to, so ours is the only one', () => {
    const back = new URL(
      withQuery('https://app.example.com/x?connected=old&keep=1&connection%5Fid=stale', outcome),
    );
    expect(back.searchParams.getAll('connected')).toEqual(['jobber']);
    expect(back.searchParams.getAll('connection_id')).toEqual(['a.B_9:x@y-z']);
    expect(back.searchParams.get('keep')).toBe('1');
  });

  it('keeps a pair whose name is not valid percent-encoding as it was', () => {
    expect(withQuery('https://app.example.com/x?%E0%A4%A=1', { error: 'provider_error' })).toBe(
      'https://app.example.com/x?%E0%A4%A=1&error=provider_error',
    );
  });
});
