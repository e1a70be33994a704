import { contentHash, formatManagementId, isPolicyId, parseManagementId } from '../../../lambda-agent/contract';

describe('identifiers', () => {
  it.each([
    ['dev-box', true],
    ['a', true],
    ['a'.repeat(40), true],
    ['a'.repeat(41), false],
    ['Dev-box', false],
    ['1box', false],
    ['dev_box', false],
    ['', false],
  ])('isPolicyId(%j) is %s', (id, ok) => {
    expect(isPolicyId(id)).toBe(ok);
  });

  it('builds and parses management ids', () => {
    const id = formatManagementId('dev-box', 'ABCDEF0123456789');
    expect(id).toBe('smvm-dev-box-abcdef012345');
    expect(parseManagementId(id)).toEqual({ policyId: 'dev-box', hex: 'abcdef012345' });
    expect(parseManagementId('smvm-dev-box-xyz')).toBeUndefined();
  });

  it('fails to build a management id from a bad policy id or too little hex', () => {
    expect(() => formatManagementId('Dev Box', 'abcdef012345')).toThrow("management id: cannot build one from policy 'Dev Box'");
    expect(() => formatManagementId('dev-box', 'abc')).toThrow('management id: cannot build one');
  });

  it('hashes content deterministically into 16 hex digits', () => {
    expect(contentHash('policy')).toBe(contentHash('policy'));
    expect(contentHash('policy')).toMatch(/^[0-9a-f]{16}$/);
    expect(contentHash('policy')).not.toBe(contentHash('policx'));
    expect(contentHash('')).toMatchInlineSnapshot(`"811c9dc501000193"`);
  });
});
