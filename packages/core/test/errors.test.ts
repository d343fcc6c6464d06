import { expect, it } from 'vitest';
import { AuthError, BusError, ConfigError, ConnectionError } from '../src/index.js';
it('brands', () => {
  const c = new ConfigError('a.b', 'must be x', 'redis://u:pw@h');
  expect(BusError.isInstance(c)).toBe(true);
  expect(ConfigError.isInstance(c)).toBe(true);
  expect(ConnectionError.isInstance(c)).toBe(false);
  expect(c.message).not.toContain('pw');
  const p = new ConfigError('a.password', 'must be x', 'secret1');
  expect(p.message).not.toContain('secret1');
  expect(AuthError.isInstance(new AuthError('x'))).toBe(true);
  const plain = { ...c };
  expect(ConfigError.isInstance(plain)).toBe(true);
});
