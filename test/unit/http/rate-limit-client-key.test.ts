import { clientKey } from '../../../src/http/rate-limit';

describe('rate limit client key', () => {
  it('counts an IPv4 address (also IPv4-mapped IPv6) as itself', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('counts every address of one IPv6 /64 as one client', () => {
    expect(clientKey('2001:db8:0:1:aaaa::1')).toBe(clientKey('2001:db8:0:1:ffff:1:2:3'));
    expect(clientKey('2001:db8:0:1::1')).toBe('2001:db8:0:1::/64');
  });

  it('keeps different /64s apart', () => {
    expect(clientKey('2001:db8:0:1::1')).not.toBe(clientKey('2001:db8:0:2::1'));
  });
});
